"""Subject bundles in Redis (DESIGN.md §4), shared by every renderer replica.

Keys: `th:subject:<id>:manifest`, `th:subject:<id>:<blob>`, plus
`th:subject:<id>:version` (an integer bumped on every push), `th:subject:<id>:history`
(manifest digests, newest first) and the set `th:subjects`. A push writes all keys of
a bundle in one MULTI/EXEC transaction and a pull reads them in one, so a reader never
sees half of a new version. Every pull is sha256-verified; a mismatch is refused.
"""

from __future__ import annotations

import os
from typing import Any

from services.common.bundle import SubjectBundle, check_subject_id, parse_manifest
from services.common.errors import NotFound, Unavailable

DEFAULT_URL = "redis://localhost:6379/0"
_PREFIX = "th:subject:"
_INDEX = "th:subjects"
_HISTORY_KEEP = 20


def redis_url() -> str:
    return os.environ.get("TALKING_HEAD_REDIS_URL", DEFAULT_URL)


class RedisSubjectStore:
    def __init__(self, url: str | None = None, timeout_s: float = 5.0) -> None:
        import redis

        self.url = url or redis_url()
        self._redis = redis.Redis.from_url(self.url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s)

    def _call(self, fn, *args: Any) -> Any:
        import redis

        try:
            return fn(*args)
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            raise Unavailable(f"subject store at {self.url} is unreachable: {exc}") from exc

    @staticmethod
    def _key(subject_id: str, part: str) -> str:
        return f"{_PREFIX}{subject_id}:{part}"

    def ping(self) -> bool:
        return bool(self._call(self._redis.ping))

    def ids(self) -> list[str]:
        return sorted(x.decode() for x in self._call(self._redis.smembers, _INDEX))

    def version(self, subject_id: str) -> int:
        value = self._call(self._redis.get, self._key(check_subject_id(subject_id), "version"))
        return int(value) if value is not None else 0

    def push(self, bundle: SubjectBundle) -> int:
        """Store a verified bundle atomically; returns the new version number."""
        bundle.verify()
        sid = bundle.id
        old = self._call(self._redis.get, self._key(sid, "manifest"))
        stale = set(parse_manifest(old, sid)["blobs"]) - set(bundle.blobs) if old else set()

        def txn() -> list:
            pipe = self._redis.pipeline(transaction=True)
            for name, data in bundle.blobs.items():
                pipe.set(self._key(sid, name), data)
            for name in stale:
                pipe.delete(self._key(sid, name))
            pipe.set(self._key(sid, "manifest"), bundle.manifest_bytes)
            pipe.incr(self._key(sid, "version"))
            pipe.lpush(self._key(sid, "history"), bundle.digest)
            pipe.ltrim(self._key(sid, "history"), 0, _HISTORY_KEEP - 1)
            pipe.sadd(_INDEX, sid)
            return pipe.execute()

        results = self._call(txn)
        return int(results[len(bundle.blobs) + len(stale) + 1])

    def manifest(self, subject_id: str) -> dict:
        raw = self._call(self._redis.get, self._key(check_subject_id(subject_id), "manifest"))
        if raw is None:
            raise NotFound(f"unknown subject {subject_id!r} in the subject store")
        return parse_manifest(raw, subject_id)

    def pull(self, subject_id: str) -> SubjectBundle:
        """Fetch and verify one consistent version; IntegrityError if any hash mismatches."""
        sid = check_subject_id(subject_id)
        manifest = self.manifest(sid)
        names = list(manifest["blobs"])

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
        if list(manifest["blobs"]) != names:  # a push landed between the two reads: read again
            return self.pull(sid)
        return SubjectBundle(manifest, {n: b for n, b in zip(names, blobs) if b is not None}).verify()

    def remove(self, subject_id: str) -> None:
        sid = check_subject_id(subject_id)
        manifest = self.manifest(sid)
        keys = [self._key(sid, n) for n in manifest["blobs"]]
        keys += [self._key(sid, p) for p in ("manifest", "version", "history")]

        def txn() -> None:
            pipe = self._redis.pipeline(transaction=True)
            pipe.delete(*keys)
            pipe.srem(_INDEX, sid)
            pipe.execute()

        self._call(txn)
