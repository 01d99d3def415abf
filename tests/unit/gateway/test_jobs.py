"""Async jobs: a bounded queue in front of the stream slots, owner-only records, TTL, and
no job left `running` when it crashes, is cancelled or its replica stops."""

from __future__ import annotations

import asyncio
import time

import pytest

from services.common.errors import InvalidInput, NotFound, ResourceExhausted
from services.gateway import jobs as jobs_module
from services.gateway.auth import key_hash
from services.gateway.jobs import JobQueue, JobStore, check_job_id, new_job_id
from services.gateway.request import SpeakRequest, check_request
from services.gateway.slots import StreamSlots
from services.gateway.webhooks import WebhookSender

REQ = check_request(SpeakRequest(text="hi"))
ALICE, BOB = key_hash("alice"), key_hash("bob")


class Renders:
    """The queue's render step: each call waits until `release()` lets it finish (or fail)."""

    def __init__(self) -> None:
        self.started = 0
        self.gate = asyncio.Event()
        self.error: BaseException | None = None

    async def __call__(self, req):
        self.started += 1
        await self.gate.wait()
        if self.error is not None:
            raise self.error
        return b"mp4-bytes", {"frames": 3, "seconds": 0.12}


def _queue(store: JobStore, renders: Renders, streams: int = 1, queued: int = 2) -> JobQueue:
    return JobQueue(store, StreamSlots(streams), renders, WebhookSender(), queued)


async def _settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0.01)


def test_job_ids_are_strict():
    job_id = new_job_id()
    assert check_job_id(job_id) == job_id and len(job_id) == 32
    for bad in (job_id + ":mp4", job_id.upper(), job_id[:-1], "../" + job_id[3:], "", None, job_id + "\n"):
        with pytest.raises(InvalidInput, match="job id"):
            check_job_id(bad)
    with pytest.raises(InvalidInput):
        JobStore("", 60).get(job_id + ":mp4", "")


def test_queue_positions_states_and_a_full_queue():
    async def main():
        store, renders = JobStore("", 60), Renders()
        q = _queue(store, renders, streams=1, queued=2)
        first = await q.submit(REQ, ALICE, None)
        await _settle()
        assert store.get(first["id"], ALICE)["status"] == "running" and renders.started == 1
        second, third = await q.submit(REQ, ALICE, None), await q.submit(REQ, ALICE, None)
        assert (second["status"], second["position"], third["position"]) == ("queued", 1, 2)
        with pytest.raises(ResourceExhausted, match="queue is full") as e:
            await q.submit(REQ, ALICE, None)
        assert e.value.retry_after_s and e.value.retry_after_s > 0
        assert len(store._mem) == 3  # nothing stored for the refused job
        renders.gate.set()
        for _ in range(100):
            await asyncio.sleep(0.02)
            if all(store.get(j["id"], ALICE)["status"] == "done" for j in (first, second, third)):
                break
        done = store.get(third["id"], ALICE)
        assert done["status"] == "done" and done["frames"] == 3 and "position" not in done and "owner" not in done
        assert done["content_url"] == f"/v1/videos/{third['id']}/content"
        assert store.video(third["id"], ALICE) == b"mp4-bytes" and q.queued == 0
        q.close()

    asyncio.run(main())


def test_streams_are_refused_while_jobs_hold_the_slots_and_jobs_wait_their_turn():
    async def main():
        slots, order = StreamSlots(1), []

        async def job(name):
            async with slots.wait():
                order.append(name)
                await asyncio.sleep(0.02)

        async with slots.wait():
            waiting = [asyncio.create_task(job(n)) for n in "abc"]
            await _settle()
            with pytest.raises(ResourceExhausted, match="limit of 1 streams"):
                async with slots.take():
                    pass
            waiting[1].cancel()  # gives up its place
        await asyncio.gather(*waiting, return_exceptions=True)
        assert order == ["a", "c"] and slots.active == 0
        async with slots.take():
            assert slots.active == 1

    asyncio.run(main())


def test_a_job_is_visible_only_to_its_key():
    async def main():
        store, renders = JobStore("", 60), Renders()
        q = _queue(store, renders)
        renders.gate.set()
        job = await q.submit(REQ, ALICE, None)
        open_job = await q.submit(REQ, "", None)
        await _settle()
        assert store.get(job["id"], ALICE)["status"] == "done"
        for owner in (BOB, ""):
            with pytest.raises(NotFound, match="unknown video job"):
                store.get(job["id"], owner)
            with pytest.raises(NotFound):
                store.video(job["id"], owner)
        assert store.get(open_job["id"], "")["status"] == "done"  # keys off: anyone
        with pytest.raises(NotFound):
            store.get(open_job["id"], ALICE)
        q.close()

    asyncio.run(main())


def test_crashed_and_cancelled_jobs_end_failed():
    async def main():
        store, renders = JobStore("", 60), Renders()
        q = _queue(store, renders, streams=2)
        renders.error = RuntimeError("boom")
        crashed = await q.submit(REQ, ALICE, None)
        renders.gate.set()
        await _settle()
        status = store.get(crashed["id"], ALICE)
        assert (status["status"], status["code"], status["http_status"]) == ("failed", "INTERNAL", 500)
        assert "boom" not in status["error"]  # internals stay in the log
        renders.error, renders.gate = None, asyncio.Event()
        running = await q.submit(REQ, ALICE, None)
        await _settle()
        (task,) = q._tasks
        task.cancel()
        await _settle()
        status = store.get(running["id"], ALICE)
        assert status["status"] == "failed" and status["code"] == "UNAVAILABLE" and "submit it again" in status["error"]
        q.close()

    asyncio.run(main())


def test_replica_shutdown_fails_its_unfinished_jobs():
    async def main():
        store, renders = JobStore("", 60), Renders()
        q = _queue(store, renders, streams=1, queued=4)
        running, waiting = await q.submit(REQ, ALICE, None), await q.submit(REQ, ALICE, None)
        await _settle()
        q.close()
        for job in (running, waiting):
            status = store.get(job["id"], ALICE)
            assert status["status"] == "failed" and "shut down" in status["error"]
        await _settle()
        with pytest.raises(Exception, match="shutting down"):
            await q.submit(REQ, ALICE, None)

    asyncio.run(main())


def test_a_record_whose_replica_stopped_reads_as_failed():
    store = JobStore("", 600)
    job_id = new_job_id()
    store.put([{"id": job_id, "status": "running", "owner": ALICE, "updated": time.time()}])
    assert store.get(job_id, ALICE)["status"] == "running"
    store.put([{"id": job_id, "status": "running", "owner": ALICE, "updated": time.time() - jobs_module.STALE_S - 1}])
    status = store.get(job_id, ALICE)
    assert status["status"] == "failed" and status["code"] == "UNAVAILABLE"


def test_jobs_expire_after_their_ttl():
    store = JobStore("", 0.2)
    job_id = new_job_id()
    store.put([{"id": job_id, "status": "done", "owner": "", "updated": time.time()}], b"video")
    assert store.video(job_id, "") == b"video"
    time.sleep(0.3)
    with pytest.raises(NotFound):
        store.get(job_id, "")


def test_the_redis_job_store_has_the_subject_stores_failure_policy():
    import socket

    from services.common.errors import Unavailable
    from services.common.redis_store import SERVING_CONNECT_TIMEOUT_S, SERVING_TIMEOUT_S

    with socket.socket() as s:  # a closed loopback port: Redis down
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    store = JobStore(f"redis://:s3cret@127.0.0.1:{port}/0", 60)
    kwargs = store._redis.connection_pool.connection_kwargs
    assert (kwargs["socket_timeout"], kwargs["socket_connect_timeout"]) == (SERVING_TIMEOUT_S, SERVING_CONNECT_TIMEOUT_S)
    t0 = time.monotonic()
    with pytest.raises(Unavailable) as e:
        store.get(new_job_id(), ALICE)
    assert time.monotonic() - t0 < 1.0
    assert "job store" in e.value.message and str(port) not in e.value.message and "s3cret" not in e.value.message
