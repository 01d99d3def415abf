"""API keys: one `Bearer KEY` parser for HTTP and gRPC, constant-time checks."""

import pytest

from services.common.errors import Unauthenticated
from services.gateway.auth import ApiKeys, bearer_key, key_hash


@pytest.mark.parametrize("value,key", [
    ("Bearer k1", "k1"), ("bearer k1", "k1"), ("BEARER  k1 ", "k1"), ("  Bearer k1", "k1"),
    ("k1", None), ("Basic k1", None), ("Bearer", None), ("Bearer ", None), ("Bearer a b", None), ("", None),
    (None, None),
])
def test_bearer_key(value, key):
    assert bearer_key(value) == key


def test_keys_are_checked_and_bare_keys_refused(monkeypatch):
    keys = ApiKeys(["k1", "k2"])
    assert keys.enabled and keys.check("Bearer k2") == "k2"
    for value, words in ((None, "required"), ("", "required"), ("k1", "Bearer KEY"), ("Bearer k3", "invalid"),
                         ("Bearer k", "invalid"), ("Bearer k1k1", "invalid")):
        with pytest.raises(Unauthenticated, match=words):
            keys.check(value)
    monkeypatch.setenv("TALKING_HEAD_API_KEYS", " e1, ,e2 ")
    assert ApiKeys().check("Bearer e2") == "e2"
    monkeypatch.delenv("TALKING_HEAD_API_KEYS")
    off = ApiKeys()
    assert not off.enabled and off.check(None) is None and off.check("Bearer anything") is None


def test_key_hash_names_the_owner_without_the_key():
    assert key_hash(None) == key_hash("") == ""
    assert key_hash("k1") != key_hash("k2") and "k1" not in key_hash("k1") and len(key_hash("k1")) == 64
