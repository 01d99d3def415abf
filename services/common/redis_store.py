"""Subject bundles in Redis (DESIGN.md §4), shared by every renderer replica.

Keys: `th:subject:<id>:manifest`, `th:subject:<id>:<blob>`, plus
`th:subject:<id>:version` (an integer bumped on every push), `th:subject:<id>:history`
(manifest digests, newest first) and the set `th:subjects`. A push writes all keys of
a bundle in one MULTI/EXEC transaction and a pull reads them in one, so a reader never
sees half of a new version. Every pull is sha256-verified; a mismatch is refused.

Pushes and removals WATCH the manifest key: the blobs a transaction deletes are those of
the manifest it replaced, and a concurrent push makes it start again (a bounded number of
times, then Unavailable), so no blob is left behind or deleted from under a new version.

Failing fast (`RedisClient`, which the job store uses too): every socket operation has a timeout (`timeout_s`, connecting
`connect_timeout_s`), a refused or dropped connection is retried `retries` times with a short
exponential backoff, a timeout is not retried (it already waited its full time), and writes
are never retried on their own (an EXEC whose answer was lost may have been applied).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, TypeVar

from services.common.bundle import SubjectBundle, check_subject_id, parse_manifest
from services.common.errors import NotFound, Unavailable

DEFAULT_URL = "redis://localhost:6379/0"
_PREFIX = "th:subject:"
_INDEX = "th:subjects"
_HISTORY_KEEP = 20
#: Optimistic transactions (and pulls) that a concurrent push invalidates start again this often.
_CONFLICT_TRIES = 5

T = TypeVar("T")


def redis_url() -> str:
    return os.environ.get("TALKING_HEAD_REDIS_URL", DEFAULT_URL)


#: The serving replicas' policy (subjects, jobs): a Redis that is down fails a call within
#: about a second, a hung one after one timeout.
SERVING_TIMEOUT_S = 2.0
SERVING_CONNECT_TIMEOUT_S = 1.0


class RedisClient:
    """A Redis connection with the project's failure policy (see the module docstring); `what`
    names the store in its errors. Messages carry no address (a URL may hold a password): the
    cause, chained, has the details for the log."""

    def __init__(self, url: str, what: str, timeout_s: float = SERVING_TIMEOUT_S,
                 connect_timeout_s: float | None = None, retries: int = 2) -> None:
        import redis
        from redis.backoff import ExponentialBackoff, NoBackoff
        from redis.retry import Retry

        self.url, self.what = url, what
        connect_timeout_s = min(timeout_s, 1.0) if connect_timeout_s is None else connect_timeout_s
        # The connection itself does not retry: nested under ours its retries would multiply.
        self.redis = redis.Redis.from_url(url, socket_timeout=timeout_s, socket_connect_timeout=connect_timeout_s,
                                          retry=Retry(NoBackoff(), 0))
        self._retry = Retry(ExponentialBackoff(cap=0.1, base=0.01), retries, supported_errors=(redis.ConnectionError,))

    def call(self, fn: Callable[..., T], *args: Any, retry: bool = True) -> T:
        """`fn(*args)`, Redis failures as Unavailable; idempotent calls retry refused connections."""
        import redis

        try:
            if retry:
                return self._retry.call_with_retry(lambda: fn(*args), lambda _error: None)
            return fn(*args)
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            raise Unavailable(f"the {self.what} is unreachable ({type(exc).__name__}); retry") from exc
        except redis.RedisError as exc:
            raise Unavailable(f"the {self.what} refused the operation ({type(exc).__name__})") from exc


class RedisSubjectStore:
    def __init__(self, url: str | None = None, timeout_s: float = 5.0, connect_timeout_s: float | None = None,
                 retries: int = 2) -> None:
        self.url = url or redis_url()
        self._client = RedisClient(self.url, "subject store", timeout_s, connect_timeout_s, retries)
        self._redis = self._client.redis
        self._call = self._client.call

    def _watched(self, subject_id: str, build: Callable[[Any, bytes | None], Callable[[list], T]]) -> T:
        """Run one optimistic transaction on a subject: WATCH its manifest, read it, queue the
        writes `build(pipe, manifest)` returns a result reader for, EXEC. Not retried on a
        lost connection; started again (bounded) when a concurrent push changed the manifest."""
        import redis

        def attempt() -> T:
            for _ in range(_CONFLICT_TRIES):
                with self._redis.pipeline(transaction=True) as pipe:
                    try:
                        pipe.watch(self._key(subject_id, "manifest"))
                        current = pipe.get(self._key(subject_id, "manifest"))
                        pipe.multi()
                        result = build(pipe, current)
                        return result(pipe.execute())
                    except redis.WatchError:
                        continue
            raise Unavailable(f"subject {subject_id!r} changed {_CONFLICT_TRIES} times during one update; try again")

        return self._call(attempt, retry=False)

    @staticmethod
    def _key(subject_id: str, part: str) -> str:
        return f"{_PREFIX}{subject_id}:{part}"

    def ping(self) -> bool:
        return bool(self._call(self._redis.ping))

    def ids(self) -> list[str]:
        return sorted(x.decode() for x in self._call(self._redis.smembers, _INDEX))

    def manifests(self) -> dict[str, dict]:
        """Every stored subject's manifest in two round trips (the index, then all manifests),
        so a hung Redis costs one timeout, not one per subject."""
        ids = self.ids()
        raws = self._call(self._redis.mget, [self._key(i, "manifest") for i in ids]) if ids else []
        return {i: parse_manifest(raw, i) for i, raw in zip(ids, raws) if raw is not None}

    def version(self, subject_id: str) -> int:
        value = self._call(self._redis.get, self._key(check_subject_id(subject_id), "version"))
        return int(value) if value is not None else 0

    def push(self, bundle: SubjectBundle) -> int:
        """Store a verified bundle atomically, dropping the blobs only the replaced version had;
        returns the new version number."""
        bundle.verify()
        sid = bundle.id

        def build(pipe: Any, old: bytes | None) -> Callable[[list], int]:
            stale = set(parse_manifest(old, sid)["blobs"]) - set(bundle.blobs) if old else set()
            for name, data in bundle.blobs.items():
                pipe.set(self._key(sid, name), data)
            for name in stale:
                pipe.delete(self._key(sid, name))
            pipe.set(self._key(sid, "manifest"), bundle.manifest_bytes)
            pipe.incr(self._key(sid, "version"))
            pipe.lpush(self._key(sid, "history"), bundle.digest)
            pipe.ltrim(self._key(sid, "history"), 0, _HISTORY_KEEP - 1)
            pipe.sadd(_INDEX, sid)
            return lambda results: int(results[len(bundle.blobs) + len(stale) + 1])

        return self._watched(sid, build)

    def manifest(self, subject_id: str) -> dict:
        raw = self._call(self._redis.get, self._key(check_subject_id(subject_id), "manifest"))
        if raw is None:
            raise NotFound(f"unknown subject {subject_id!r} in the subject store")
        return parse_manifest(raw, subject_id)

    def pull(self, subject_id: str) -> SubjectBundle:
        """Fetch and verify one consistent version; IntegrityError if any hash mismatches."""
        sid = check_subject_id(subject_id)
        for _ in range(_CONFLICT_TRIES):
            names = list(self.manifest(sid)["blobs"])

            def txn() -> list:
                pipe = self._redis.pipeline(transaction=True)
                pipe.get(self._key(sid, "manifest"))
                for name in names:
                    pipe.get(self._key(sid, name))
                return pipe.execute()

            raw, *blobs = self._call(txn)
            if raw is None:
                raise NotFound(f"unknown subject {subject_id!r} in the subject store")
            manifest = parse_manifest(raw, sid)
            if list(manifest["blobs"]) == names:  # else a push changed the blob list between the reads
                return SubjectBundle(manifest, {n: b for n, b in zip(names, blobs) if b is not None}).verify()
        raise Unavailable(f"subject {subject_id!r} changed {_CONFLICT_TRIES} times while being read; try again")

    def remove(self, subject_id: str) -> None:
        sid = check_subject_id(subject_id)

        def build(pipe: Any, manifest: bytes | None) -> Callable[[list], None]:
            if manifest is None:
                raise NotFound(f"unknown subject {subject_id!r} in the subject store")
            keys = [self._key(sid, n) for n in parse_manifest(manifest, sid)["blobs"]]
            pipe.delete(*keys, *(self._key(sid, p) for p in ("manifest", "version", "history")))
            pipe.srem(_INDEX, sid)
            return lambda results: None

        self._watched(sid, build)
