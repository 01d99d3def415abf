import os
import signal
import socket
import threading
import time
from pathlib import Path

import pytest

from services.common.bundle import make_bundle
from services.common.errors import IntegrityError, NotFound, Unavailable
from services.common.redis_store import RedisSubjectStore
from services.common.subject_source import SubjectListing, SubjectSource
from services.common.subject_store import LocalSubjectStore


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


# ---- failing fast, retries, concurrent writers ----------------------------------------------


def _elapsed(fn):
    t0 = time.perf_counter()
    with pytest.raises(Unavailable, match="unreachable"):
        fn()
    return time.perf_counter() - t0


def test_redis_stopped_fails_fast(redis_server):
    source = SubjectSource(redis_server.url, local=LocalSubjectStore(Path("/nonexistent"), bundled=None))
    source.redis.push(_bundle())
    redis_server.kill()
    store = RedisSubjectStore(redis_server.url)
    for call in (lambda: store.pull("alice"), store.ids, lambda: store.push(_bundle()), store.ping,
                 lambda: source.load("alice")):
        assert _elapsed(call) < 3.0
    assert source.healthy() is False


def test_a_hung_redis_costs_one_timeout_not_a_retry_storm(redis_server):
    store = RedisSubjectStore(redis_server.url, timeout_s=0.5)
    store.push(_bundle())
    os.kill(redis_server.proc.pid, signal.SIGSTOP)  # accepts connections, never answers
    try:
        assert _elapsed(lambda: store.pull("alice")) < 3.0
        assert _elapsed(lambda: RedisSubjectStore(redis_server.url, timeout_s=0.5).ids()) < 3.0
    finally:
        os.kill(redis_server.proc.pid, signal.SIGCONT)


class _DropFirstConnections:
    """A TCP relay to Redis that closes its first `drops` connections at once."""

    def __init__(self, target_port: int, drops: int) -> None:
        self.drops = drops
        self.target_port = target_port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            if self.drops > 0:
                self.drops -= 1
                conn.close()
                continue
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            for a, b in ((conn, upstream), (upstream, conn)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass


def test_dropped_connections_are_retried_a_few_times(redis_server):
    RedisSubjectStore(redis_server.url).push(_bundle())
    relay = _DropFirstConnections(redis_server.port, drops=2)
    store = RedisSubjectStore(f"redis://127.0.0.1:{relay.port}/0", retries=2)
    assert store.pull("alice").blobs["model.safetensors"] == b"weights-v1"
    relay.drops = 3  # one more than the policy allows: Unavailable, no endless retrying
    store = RedisSubjectStore(f"redis://127.0.0.1:{relay.port}/0", retries=2)
    assert _elapsed(lambda: store.ids()) < 3.0
    relay.listener.close()


def test_listing_falls_back_to_the_local_store_when_redis_is_down(redis_server, tmp_path):
    local = LocalSubjectStore(tmp_path / "local", bundled=None)
    local.save(make_bundle("bob", {"model.safetensors": b"w", "background.png": b"p", "tracks.safetensors": b"t"}))
    source = SubjectSource(redis_server.url, local=local)
    source.redis.push(_bundle())
    assert source.listing() == SubjectListing(["alice", "bob"], degraded=False)
    redis_server.kill()
    t0 = time.perf_counter()
    assert source.ids() == ["bob"] and source.listing() == SubjectListing(["bob"], degraded=True)
    assert time.perf_counter() - t0 < 3.0
    assert source.manifest("bob")["id"] == "bob"


def _keys(store):
    return sorted(k.decode().removeprefix("th:subject:alice:") for k in store._redis.keys("th:subject:alice:*"))


def test_concurrent_pushes_and_pulls_stay_consistent_and_leave_no_stale_blobs(redis_server):
    versions = [_bundle(b"A" * 1000, {"fusion.safetensors": b"fa"}), _bundle(b"B" * 2000),
                _bundle(b"C" * 3000, {"extra.png": b"ce"})]
    payloads = {v.blobs["model.safetensors"]: set(v.blobs) for v in versions}
    RedisSubjectStore(redis_server.url).push(versions[0])
    stop, errors, pulls, pushes, count = threading.Event(), [], [0], [1], threading.Lock()

    def pusher(offset):
        store = RedisSubjectStore(redis_server.url)
        i = offset
        while not stop.is_set():
            try:
                store.push(versions[i % len(versions)])
                with count:
                    pushes[0] += 1
            except Unavailable as exc:  # lost the optimistic race five times in a row
                assert "changed" in str(exc)
            except Exception as exc:  # noqa: BLE001 - reported by the main thread
                errors.append(exc)
            i += 1

    def puller():
        store = RedisSubjectStore(redis_server.url)
        while not stop.is_set():
            try:
                b = store.pull("alice")
                assert set(b.blobs) == payloads[b.blobs["model.safetensors"]]
                pulls[0] += 1
            except Unavailable as exc:
                assert "changed" in str(exc)
            except Exception as exc:  # noqa: BLE001
                errors.append(exc)

    threads = [threading.Thread(target=pusher, args=(k,)) for k in range(3)] + [threading.Thread(target=puller)]
    for t in threads:
        t.start()
    time.sleep(3.0)
    stop.set()
    for t in threads:
        t.join(timeout=30)
    assert not errors, errors[:3]
    assert pulls[0] > 10 and pushes[0] > 10
    store = RedisSubjectStore(redis_server.url)
    final = store.pull("alice")
    assert _keys(store) == sorted({*final.blobs, "manifest", "version", "history"})
    assert store.version("alice") == pushes[0]


class _RacedStore(RedisSubjectStore):
    """Every manifest read is followed by a push that changes the blob list."""

    def __init__(self, url):
        super().__init__(url)
        self.flip = 0

    def manifest(self, subject_id):
        m = super().manifest(subject_id)
        self.flip += 1
        RedisSubjectStore(self.url).push(_bundle(extra={f"x{self.flip}.png": b"x"}))
        return m


def test_a_pull_raced_by_pushes_gives_up_after_a_few_tries(redis_server):
    store = _RacedStore(redis_server.url)
    store.push(_bundle())
    with pytest.raises(Unavailable, match="changed 5 times"):
        store.pull("alice")
    assert store.flip == 5
    assert RedisSubjectStore(redis_server.url).pull("alice").blobs.keys() == {
        "model.safetensors", "background.png", "tracks.safetensors", "x5.png"}
    assert _keys(store) == sorted(["model.safetensors", "background.png", "tracks.safetensors", "x5.png",
                                   "manifest", "version", "history"])
