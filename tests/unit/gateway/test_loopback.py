"""The preloaded bind() wrapper moves wildcard binds to loopback and leaves public ports alone."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import pytest

from services.common.native import compiler
from services.gateway import loopback

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux") or compiler() is None,
                                reason="the wrapper needs Linux and a C++ compiler")

PROBE = """
import json, socket, sys
out = []
for family, host in ((socket.AF_INET, "0.0.0.0"), (socket.AF_INET6, "::"), (socket.AF_INET, "127.0.0.1")):
    for port in (0, int(sys.argv[1])):
        s = socket.socket(family)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((host, port))
        out.append([host, port, s.getsockname()[0]])
        s.close()
print(json.dumps(out))
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_wildcard_binds_go_to_loopback_except_public_ports():
    public = _free_port()
    env = dict(os.environ, LD_PRELOAD=str(loopback.preload_library()), TALKING_HEAD_PUBLIC_PORTS=f"1,{public}")
    out = subprocess.run([sys.executable, "-c", PROBE, str(public)], env=env, capture_output=True, text=True,
                         check=True, timeout=60).stdout
    got = {(host, port != 0): bound for host, port, bound in json.loads(out)}
    assert got[("0.0.0.0", False)] == "127.0.0.1"
    assert got[("::", False)] == "::1"
    assert got[("0.0.0.0", True)] == "0.0.0.0"  # a Serve proxy port binds where its config says
    assert got[("::", True)] == "::"
    assert got[("127.0.0.1", False)] == got[("127.0.0.1", True)] == "127.0.0.1"


def test_without_the_wrapper_the_probe_binds_the_wildcard():
    env = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}  # a served cluster earlier sets it
    out = subprocess.run([sys.executable, "-c", PROBE, str(_free_port())], env=env, capture_output=True,
                         text=True, check=True, timeout=60).stdout
    assert {bound for host, _, bound in json.loads(out) if host == "0.0.0.0"} == {"0.0.0.0"}


def test_keep_ray_on_loopback_sets_the_environment(monkeypatch):
    import ray._private.ray_constants as constants

    monkeypatch.setattr(constants, "ENABLE_RAY_CLUSTER", constants.ENABLE_RAY_CLUSTER)  # restored after
    monkeypatch.delenv("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", raising=False)
    monkeypatch.delenv("TALKING_HEAD_PUBLIC_PORTS", raising=False)
    monkeypatch.setenv("LD_PRELOAD", "")
    assert loopback.keep_ray_on_loopback([8000, 9000])
    assert os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] == "0"
    assert os.environ["LD_PRELOAD"] == str(loopback.preload_library())
    assert os.environ["TALKING_HEAD_PUBLIC_PORTS"] == "8000,9000"
    assert loopback.keep_ray_on_loopback([8000, 9000])  # idempotent: preloaded once
    assert os.environ["LD_PRELOAD"].split() == [str(loopback.preload_library())]
    assert constants.ENABLE_RAY_CLUSTER is False  # Ray, imported before, agrees: node address 127.0.0.1


def test_a_lan_node_address_gets_no_wrapper(monkeypatch):
    """Ray told to treat the machine as a cluster dials its servers at the LAN address; wrapping
    them onto loopback would hang ray.init, so the wrapper stays off."""
    import ray._private.ray_constants as constants
    from ray._private import services

    monkeypatch.setattr(constants, "ENABLE_RAY_CLUSTER", constants.ENABLE_RAY_CLUSTER)
    monkeypatch.setenv("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "1")
    monkeypatch.setenv("LD_PRELOAD", "")
    monkeypatch.setattr(services, "get_node_ip_address", lambda address=None: "192.0.2.7")
    assert not loopback.keep_ray_on_loopback([8000])
    assert os.environ["LD_PRELOAD"] == ""
