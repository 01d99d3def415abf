"""Async video jobs (`POST /v1/videos` with `"async": true`).

A job is `queued` (with its place in this replica's queue) → `running` → `done` or `failed`.
At most `max_queued_jobs` wait per replica; one more is refused with 429 + Retry-After and
nothing is stored. Records (status and video) live in Redis when configured, so any ingress
replica answers, else in memory; they expire after `job_ttl_seconds`. A job is visible only to
the API key that created it (the record keeps a hash of the key). A job that is cancelled,
crashes, or whose result cannot be stored ends `failed`; the replica refreshes its jobs'
records every `HEARTBEAT_S`, so a job whose replica died reads as `failed` once its record
is `STALE_S` old instead of `running` for ever.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import re
import threading
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from services.common.errors import InvalidInput, NotFound, ResourceExhausted, TalkingHeadError, Unavailable
from services.common.redis_store import RedisClient
from services.common.rpc import report, status_of
from services.gateway.request import CheckedRequest
from services.gateway.slots import BUSY_RETRY_AFTER_S, StreamSlots
from services.gateway.webhooks import WebhookSender

QUEUED, RUNNING, DONE, FAILED = "queued", "running", "done", "failed"
HEARTBEAT_S = 10.0
STALE_S = 6 * HEARTBEAT_S
_JOB_ID = re.compile(r"[0-9a-f]{32}")
_MEMORY_JOBS = 1024  # records a memory store keeps (the oldest finished ones go first)

log = logging.getLogger("ray.serve")


def new_job_id() -> str:
    return uuid.uuid4().hex


def check_job_id(job_id: Any) -> str:
    if not isinstance(job_id, str) or not _JOB_ID.fullmatch(job_id):
        raise InvalidInput("bad job id: a job id is 32 lower-case hex digits")
    return job_id


def public(record: dict[str, Any]) -> dict[str, Any]:
    """What clients (and webhooks) see of a record."""
    return {k: v for k, v in record.items() if k not in ("owner", "updated")}


def _stale_as_failed(record: dict[str, Any], now: float) -> dict[str, Any]:
    if record.get("status") in (QUEUED, RUNNING) and now - float(record.get("updated", now)) > STALE_S:
        return {**record, "status": FAILED, "error": "the server replica handling this job stopped; submit it again",
                "code": "UNAVAILABLE", "http_status": 503}
    return record


class JobStore:
    """Job records and videos, expiring after `ttl_s`: in Redis when `redis_url` is set, else
    in this process's memory. Reads check the owner (a key hash) in constant time; a record of
    another owner is NotFound, exactly like a missing one."""

    def __init__(self, redis_url: str, ttl_s: float) -> None:
        self.ttl_s = ttl_s
        self._lock = threading.Lock()
        self._mem: dict[str, tuple[dict[str, Any], bytes | None, float]] = {}
        self._client = RedisClient(redis_url, "job store") if redis_url else None
        self._redis = self._client.redis if self._client is not None else None

    @staticmethod
    def _key(job_id: str, video: bool = False) -> str:
        return f"th:job:{check_job_id(job_id)}" + (":mp4" if video else "")

    def put(self, records: list[dict[str, Any]], video: bytes | None = None) -> None:
        """Store records (and, with one record, its video); Unavailable when the store refuses."""
        now = time.time()
        if self._redis is None:
            with self._lock:
                self._purge(now)
                for r in records:
                    old = self._mem.get(r["id"])
                    self._mem[r["id"]] = (dict(r), video if video is not None else (old[1] if old else None),
                                          now + self.ttl_s)
            return
        pipe = self._redis.pipeline(transaction=True)
        ttl = max(1, int(self.ttl_s))
        for r in records:
            pipe.set(self._key(r["id"]), json.dumps(r), ex=ttl)
        if video is not None:
            pipe.set(self._key(records[0]["id"], video=True), video, ex=ttl)
        self._client.call(pipe.execute, retry=False)  # writes are never retried (RedisClient's policy)

    def _purge(self, now: float) -> None:
        for job_id in [j for j, (_, _, exp) in self._mem.items() if exp <= now]:
            del self._mem[job_id]
        finished = [j for j, (r, _, _) in self._mem.items() if r.get("status") in (DONE, FAILED)]
        for job_id in finished[:max(0, len(self._mem) - _MEMORY_JOBS + 1)]:
            del self._mem[job_id]

    def _record(self, job_id: str) -> dict[str, Any] | None:
        if self._redis is None:
            with self._lock:
                self._purge(time.time())
                entry = self._mem.get(job_id)
            return entry[0] if entry else None
        raw = self._client.call(self._redis.get, self._key(job_id))
        return json.loads(raw) if raw is not None else None

    def get(self, job_id: str, owner: str) -> dict[str, Any]:
        """The record's public view; NotFound when missing, expired or someone else's."""
        check_job_id(job_id)
        record = self._record(job_id)
        if record is None or not hmac.compare_digest(str(record.get("owner", "")), owner):
            raise NotFound(f"unknown video job {job_id}")
        return public(_stale_as_failed(record, time.time()))

    def video(self, job_id: str, owner: str) -> bytes:
        status = self.get(job_id, owner)
        if status["status"] != DONE:
            raise NotFound(f"video job {job_id} has no video yet (it is {status['status']})")
        if self._redis is None:
            with self._lock:
                entry = self._mem.get(job_id)
            data = entry[1] if entry else None
        else:
            data = self._client.call(self._redis.get, self._key(job_id, video=True))
        if data is None:
            raise NotFound(f"video job {job_id} has no video (expired)")
        return data


Render = Callable[[CheckedRequest], Awaitable[tuple[bytes, dict[str, Any]]]]


class JobQueue:
    """This replica's jobs: a bounded FIFO in front of the stream slots. Call from the event loop."""

    def __init__(self, store: JobStore, slots: StreamSlots, render: Render, webhooks: WebhookSender,
                 max_queued: int) -> None:
        self.store, self.slots, self.render, self.webhooks = store, slots, render, webhooks
        self.max_queued = max_queued
        self._records: dict[str, dict[str, Any]] = {}  # this replica's queued and running jobs
        self._queued: list[str] = []
        self._tasks: set[asyncio.Task] = set()
        self._heartbeat: asyncio.Task | None = None
        self._writes = asyncio.Lock()
        self._closed = False

    @property
    def queued(self) -> int:
        return len(self._queued)

    async def submit(self, req: CheckedRequest, owner: str, webhook: str | None) -> dict[str, Any]:
        """Queue a job and store its record; ResourceExhausted (retryable) when the queue is
        full and Unavailable when the store is down — in both cases nothing is queued."""
        if self._closed:
            raise Unavailable("this replica is shutting down; retry")
        if len(self._queued) >= self.max_queued:
            raise ResourceExhausted(f"the job queue is full ({self.max_queued} jobs waiting); "
                                    f"retry in {BUSY_RETRY_AFTER_S} s", retry_after_s=BUSY_RETRY_AFTER_S)
        job_id = new_job_id()
        now = time.time()
        record = {"id": job_id, "status": QUEUED, "position": len(self._queued) + 1, "created": round(now, 3),
                  "updated": now, "owner": owner}
        self._queued.append(job_id)  # taken before the await: concurrent submits see it
        self._records[job_id] = record
        try:
            await asyncio.to_thread(self.store.put, [dict(record)])
        except BaseException:
            self._queued.remove(job_id)
            del self._records[job_id]
            raise
        task = asyncio.create_task(self._run(job_id, req, webhook))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        if self._heartbeat is None:
            self._heartbeat = asyncio.create_task(self._beat())
        return public(record)

    def _touch(self) -> list[dict[str, Any]]:
        """This replica's active records with fresh positions and times."""
        now = time.time()
        for i, job_id in enumerate(self._queued, start=1):
            self._records[job_id]["position"] = i
        for record in self._records.values():
            record["updated"] = now
        return [dict(r) for r in self._records.values()]

    async def _refresh(self) -> None:
        async with self._writes:  # one write at a time: a refresh never lands after a job's last record
            records = self._touch()
            if records:
                try:
                    await asyncio.to_thread(self.store.put, records)
                except TalkingHeadError as exc:
                    log.warning("could not refresh %d job record(s): %s", len(records), exc.message)

    async def _beat(self) -> None:
        while not self._closed:
            await asyncio.sleep(HEARTBEAT_S)
            await self._refresh()

    async def _finish(self, final: dict[str, Any], video: bytes | None = None) -> dict[str, Any]:
        """Store a job's last record (and video) and stop refreshing it. A video that cannot be
        stored fails the job; a last record that cannot be stored is logged (it then goes stale
        and reads as failed)."""
        async with self._writes:
            self._records.pop(final["id"], None)
            try:
                await asyncio.to_thread(self.store.put, [final], video)
                return final
            except Exception as exc:  # noqa: BLE001 - loudly, below
                if video is None:
                    log.error("video job %s ended %s but its record could not be stored: %s", final["id"],
                              final["status"], exc)
                    return final
                log.error("video job %s: the %d-byte video could not be stored: %s", final["id"], len(video), exc)
                final = self._failed(final, Unavailable("the video could not be stored; submit the job again"))
            # Redis counts the refused video's query buffer as used memory until its cron frees
            # it (about 0.1 s): give the small failure record a few tries
            for attempt in range(4):
                try:
                    await asyncio.to_thread(self.store.put, [final])
                    break
                except Exception as exc:  # noqa: BLE001
                    if attempt == 3:
                        log.error("video job %s: could not record that it failed: %s", final["id"], exc)
                    else:
                        await asyncio.sleep(0.25 * (attempt + 1))
            return final

    async def _run(self, job_id: str, req: CheckedRequest, webhook: str | None) -> None:
        record = self._records[job_id]
        try:
            try:
                async with self.slots.wait():
                    self._queued.remove(job_id)
                    record.pop("position", None)
                    record["status"] = RUNNING
                    await self._refresh()
                    video, meta = await self.render(req)
                    final = await self._finish({**record, "status": DONE, **meta, "updated": time.time(),
                                                "content_url": f"/v1/videos/{job_id}/content"}, video)
            except asyncio.CancelledError:
                self._records.pop(job_id, None)
                final = self._failed(record, Unavailable("the job was cancelled (server shutting down); "
                                                         "submit it again"))
                try:  # no awaiting once cancelled: a short blocking write, best effort
                    self.store.put([final])
                except Exception as exc:  # noqa: BLE001
                    log.error("video job %s: could not record that it failed: %s", job_id, exc)
                raise
            except Exception as exc:  # noqa: BLE001 - recorded in the job (and logged)
                final = await self._finish(self._failed(record, exc, log_failure=True))
        finally:
            if job_id in self._queued:
                self._queued.remove(job_id)
            self._records.pop(job_id, None)
        if webhook:
            self.webhooks.submit(webhook, public(final))

    @staticmethod
    def _failed(record: dict[str, Any], exc: BaseException, log_failure: bool = False) -> dict[str, Any]:
        """The failed record: the error's code and the message a client may see (a server-side
        failure names the request id; with `log_failure` the log has its details)."""
        code, http, message = report(exc, f"video job {record['id']}") if log_failure else status_of(exc)
        base = {k: v for k, v in record.items() if k not in ("position", "frames", "seconds", "content_url")}
        return {**base, "status": FAILED, "error": message, "code": code.name, "http_status": http,
                "updated": time.time()}

    def close(self) -> None:
        """Best effort at replica shutdown: every job of this replica is recorded as failed."""
        if self._closed:
            return
        self._closed = True
        if self._heartbeat is not None:
            self._heartbeat.cancel()
        finals = [self._failed(r, Unavailable("the server shut down before the job finished; submit it again"))
                  for r in self._records.values()]
        if finals:
            try:
                self.store.put(finals)
            except Exception as exc:  # noqa: BLE001
                log.error("could not record %d unfinished job(s) as failed at shutdown: %s", len(finals), exc)
        for task in list(self._tasks):
            try:  # close() may run outside the event loop (replica shutdown)
                task.get_loop().call_soon_threadsafe(task.cancel)
            except RuntimeError:  # the loop is closed already
                pass
        self.webhooks.close()
