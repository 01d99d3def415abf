"""Job records in a real Redis: owner-only reads, strict ids, TTL, and a video that Redis
refuses to store fails its job loudly (no Ray)."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest

from services.common.errors import InvalidInput, NotFound, Unavailable
from services.gateway.auth import key_hash
from services.gateway.jobs import JobQueue, JobStore, new_job_id
from services.gateway.request import SpeakRequest, check_request
from services.gateway.slots import StreamSlots
from services.gateway.webhooks import WebhookSender

pytestmark = pytest.mark.integration
OWNER = key_hash("k1")


def test_records_are_owner_only_strict_and_expire(redis_server):
    store = JobStore(redis_server.url, ttl_s=1)
    job_id = new_job_id()
    store.put([{"id": job_id, "status": "done", "owner": OWNER, "updated": time.time()}], b"\x00mp4")
    assert store.get(job_id, OWNER)["status"] == "done" and store.video(job_id, OWNER) == b"\x00mp4"
    with pytest.raises(NotFound):
        store.get(job_id, key_hash("k2"))
    with pytest.raises(InvalidInput):  # never reads th:job:<id>:mp4 as a record
        store.get(f"{job_id}:mp4", OWNER)
    time.sleep(1.5)
    with pytest.raises(NotFound):
        store.get(job_id, OWNER)


def test_a_video_redis_refuses_fails_the_job_loudly(redis_server, caplog):
    import redis

    client = redis.Redis.from_url(redis_server.url)
    used = client.info("memory")["used_memory"]
    client.config_set("maxmemory-policy", "noeviction")
    # room for the small records (and the allocator's slack), not for the 2 MB video
    client.config_set("maxmemory", used + 1_000_000)

    async def render(req):
        return b"\x00" * 2_000_000, {"frames": 1, "seconds": 0.04}

    async def main():
        store = JobStore(redis_server.url, ttl_s=60)
        queue = JobQueue(store, StreamSlots(1), render, WebhookSender(), 2)
        job = await queue.submit(check_request(SpeakRequest(text="hi")), OWNER, None)
        for _ in range(100):
            await asyncio.sleep(0.05)
            if store.get(job["id"], OWNER)["status"] in ("done", "failed"):
                break
        queue.close()
        return store.get(job["id"], OWNER)

    with caplog.at_level(logging.ERROR, logger="ray.serve"):
        status = asyncio.run(main())
    assert status["status"] == "failed" and "could not be stored" in status["error"], status
    assert any("could not be stored" in r.getMessage() for r in caplog.records)


def test_nothing_is_queued_when_the_store_is_down(redis_server):
    async def render(req):
        return b"", {}

    async def main():
        store = JobStore(redis_server.url, ttl_s=60)
        queue = JobQueue(store, StreamSlots(1), render, WebhookSender(), 2)
        redis_server.kill()
        with pytest.raises(Unavailable, match="job store"):
            await queue.submit(check_request(SpeakRequest(text="hi")), OWNER, None)
        assert queue.queued == 0 and not queue._records
        queue.close()

    asyncio.run(main())
