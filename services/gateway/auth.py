"""API keys: one parser for the `authorization` value (HTTP header and gRPC metadata alike)
and constant-time key checks.

Both protocols accept exactly `Bearer KEY` (the scheme is case-insensitive, RFC 6750); a
bare key is refused, so a client that works over one protocol works over the other.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Iterable

from services.common.errors import Unauthenticated

ENV_KEYS = "TALKING_HEAD_API_KEYS"


def keys_from_env() -> set[str]:
    return {k.strip() for k in os.environ.get(ENV_KEYS, "").split(",") if k.strip()}


def bearer_key(value: str | None) -> str | None:
    """The key in `Bearer KEY`, or None when the value is absent or has another form."""
    scheme, _, key = (value or "").strip().partition(" ")
    key = key.strip()
    if scheme.lower() != "bearer" or not key or " " in key:
        return None
    return key


def key_hash(key: str | None) -> str:
    """What a job stores about the key that created it (never the key itself); "" for none."""
    return hashlib.sha256(key.encode()).hexdigest() if key else ""


class ApiKeys:
    """The configured keys; with none, every request is let in (and `check` returns None)."""

    def __init__(self, keys: Iterable[str] | None = None) -> None:
        given = {k for k in (keys or ()) if k}
        self._keys = [k.encode() for k in sorted(given or keys_from_env())]

    @property
    def enabled(self) -> bool:
        return bool(self._keys)

    def check(self, authorization: str | None) -> str | None:
        """The caller's key when it is one of ours (None when keys are off); else Unauthenticated."""
        if not self._keys:
            return None
        key = bearer_key(authorization)
        if key is None:
            raise Unauthenticated("an API key is required: send `authorization: Bearer KEY`"
                                  if not authorization else "the authorization must be `Bearer KEY`")
        given = key.encode()
        # compare with every key, whichever matches: the time taken says nothing about which
        match = False
        for k in self._keys:
            match |= hmac.compare_digest(given, k)
        if not match:
            raise Unauthenticated("invalid API key")
        return key
