"""Where serving replicas get subject bundles: Redis first, the local store as a fallback.

- Redis configured and up: the bundle comes from Redis (sha256-verified); a subject Redis
  does not know is looked up locally (the bundled demo, the user's store), else NotFound.
- Redis configured but down: subjects found locally still load; others fail with
  Unavailable (a dependency is down — not "unknown subject"). Listing never fails: it
  answers the local subjects and says it is `degraded` (`listing()`).
- No Redis URL: the local store only (the laptop case).
Replicas cache what they load (Ray Serve multiplexing, an LRU), so a Redis outage only
affects subjects a replica has not loaded yet.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from services.common.bundle import SubjectBundle, check_subject_id
from services.common.errors import NotFound, Unavailable
from services.common.redis_store import SERVING_CONNECT_TIMEOUT_S, SERVING_TIMEOUT_S, RedisSubjectStore
from services.common.subject_store import LocalSubjectStore


@dataclass(frozen=True)
class SubjectListing:
    ids: list[str]
    #: Redis is configured but unreachable: only the local subjects are listed.
    degraded: bool = False
    #: id → manifest for every listed id, when asked for (`listing(manifests=True)`).
    manifests: dict[str, dict] = field(default_factory=dict)


class SubjectSource:
    def __init__(self, redis_url: str | None = None, local: LocalSubjectStore | None = None,
                 timeout_s: float = SERVING_TIMEOUT_S, connect_timeout_s: float = SERVING_CONNECT_TIMEOUT_S) -> None:
        self.redis_url = redis_url if redis_url is not None else os.environ.get("TALKING_HEAD_REDIS_URL", "")
        self.local = local if local is not None else LocalSubjectStore()
        self._redis = None
        if self.redis_url:
            self._redis = RedisSubjectStore(self.redis_url, timeout_s=timeout_s, connect_timeout_s=connect_timeout_s)

    @property
    def redis(self):
        return self._redis

    def _local_or(self, subject_id: str, exc: Exception) -> SubjectBundle:
        if self.local.path(subject_id) is not None:
            return self.local.load(subject_id)
        raise exc

    def load(self, subject_id: str) -> SubjectBundle:
        check_subject_id(subject_id)
        if self._redis is None:
            return self.local.load(subject_id)
        try:
            return self._redis.pull(subject_id)
        except NotFound as exc:
            return self._local_or(subject_id, exc)
        except Unavailable as exc:
            return self._local_or(subject_id, exc)

    def manifest(self, subject_id: str) -> dict:
        check_subject_id(subject_id)
        if self._redis is not None:
            try:
                return self._redis.manifest(subject_id)
            except NotFound:
                pass
            except Unavailable as exc:
                if self.local.path(subject_id) is None:
                    raise exc
        return self.local.manifest(subject_id)

    def listing(self, manifests: bool = False) -> SubjectListing:
        """Every known subject id (and with `manifests`, each one's manifest: Redis's where it
        has the subject, else the local one), in one bounded exchange with Redis; with Redis
        down, the local ones and `degraded`."""
        local = self.local.ids()
        remote: dict[str, dict | None] = {}
        degraded = False
        if self._redis is not None:
            try:
                remote = dict(self._redis.manifests()) if manifests else dict.fromkeys(self._redis.ids())
            except Unavailable:
                degraded = True
        found = sorted(set(local) | set(remote))
        if not manifests:
            return SubjectListing(found, degraded)
        return SubjectListing(found, degraded, {i: remote.get(i) or self.local.manifest(i) for i in found})

    def ids(self) -> list[str]:
        """Every known subject id (never Unavailable: see `listing`)."""
        return self.listing().ids

    def healthy(self) -> bool:
        if self._redis is None:
            return True
        try:
            return self._redis.ping()
        except Unavailable:
            return False
