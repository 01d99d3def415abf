import pytest

from services.common.bundle import make_bundle
from services.common.errors import IntegrityError, NotFound, Unavailable
from services.common.redis_store import RedisSubjectStore


def _bundle(payload=b"weights-v1", extra=None):
    blobs = {"model.safetensors": payload, "background.png": b"png", "tracks.safetensors": b"tracks"}
    blobs.update(extra or {})
    return make_bundle("alice", blobs, fps=25)


def test_push_pull_versions(redis_server):
    store = RedisSubjectStore(redis_server.url)
    assert store.push(_bundle()) == 1
    assert store.pull("alice").blobs["model.safetensors"] == b"weights-v1"
    assert store.push(_bundle(b"weights-v2", {"fusion.safetensors": b"f"})) == 2
    assert store.push(_bundle(b"weights-v3")) == 3  # fusion blob of v2 is dropped
    b = store.pull("alice")
    assert b.blobs["model.safetensors"] == b"weights-v3" and "fusion.safetensors" not in b.blobs
    assert store.ids() == ["alice"] and store.version("alice") == 3
    assert not store._redis.exists("th:subject:alice:fusion.safetensors")


def test_corrupted_blob_is_refused(redis_server):
    store = RedisSubjectStore(redis_server.url)
    store.push(_bundle())
    store._redis.set("th:subject:alice:model.safetensors", b"tampered")
    with pytest.raises(IntegrityError, match="sha256"):
        store.pull("alice")


def test_unknown_subject_and_remove(redis_server):
    store = RedisSubjectStore(redis_server.url)
    with pytest.raises(NotFound):
        store.pull("nobody")
    store.push(_bundle())
    store.remove("alice")
    assert store.ids() == [] and store._redis.keys("th:subject:alice:*") == []


def test_redis_down_is_unavailable_and_restart_loses_nothing(redis_server):
    store = RedisSubjectStore(redis_server.url, timeout_s=0.5)
    store.push(_bundle())
    redis_server.kill()
    with pytest.raises(Unavailable, match="unreachable"):
        store.pull("alice")
    redis_server.start()  # same dir: the append-only file brings everything back
    assert store.pull("alice").blobs["model.safetensors"] == b"weights-v1"
    assert store.version("alice") == 1
