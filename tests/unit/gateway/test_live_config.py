"""The live sessions' settings: the limits in `args.limits` and `args.live.ice_servers`."""

from __future__ import annotations

import pytest

from services.common.errors import InvalidInput
from services.gateway.live.session import check_ice_servers
from services.gateway.request import Limits


def test_session_limits_come_from_the_limits_mapping():
    lim = Limits.from_dict({"max_sessions": 2, "session_idle_seconds": 30, "max_session_seconds": 600})
    assert (lim.max_sessions, lim.session_idle_seconds, lim.max_session_seconds) == (2, 30.0, 600.0)
    assert Limits().max_sessions == 4
    for bad in ({"max_sessions": 0}, {"max_sessions": 1.5}, {"session_idle_seconds": -1}, {"max_sesions": 2}):
        with pytest.raises(InvalidInput):
            Limits.from_dict(bad)


def test_ice_servers_are_checked():
    good = [{"urls": "stun:stun.example.com:3478"},
            {"urls": ["turn:turn.example.com:3478"], "username": "u", "credential": "c"}]
    assert check_ice_servers(good) == good and check_ice_servers(None) is None and check_ice_servers([]) == []
    for bad in ("turn:x", [{"url": "turn:x"}], [{"urls": 3}], [{"urls": []}], [{"urls": "turn:x", "password": "p"}],
                [{"urls": "turn:x", "username": 1}], ["turn:x"]):
        with pytest.raises(InvalidInput):
            check_ice_servers(bad)
