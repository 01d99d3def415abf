"""Live sessions in-process: a real aiortc client over loopback against `LiveSessions` on
the in-process pipeline with a tiny random-weight subject (32×32, real models).

Measured here (printed with -s): time from speak to the first speaking frame at the client,
interrupt to the first idle frame at the client, and the A/V offset at the client — for
frames of the same media time, the wall time between the video frame's arrival and its
audio's arrival."""

from __future__ import annotations

import asyncio
import time

import pytest

pytest.importorskip("aiortc")

from services.common.errors import InvalidInput, NotFound, ResourceExhausted  # noqa: E402
from services.gateway.live.client import LiveClient  # noqa: E402
from services.gateway.request import Limits, SpeakRequest  # noqa: E402

TEXT = "Hello there. Thanks for calling, how can I help you today? I am listening."


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    from services.common.subject_store import LocalSubjectStore
    from services.gateway.pipeline import Pipeline
    from services.training.random_subject import random_subject

    root = tmp_path_factory.mktemp("live")
    store = LocalSubjectStore(root / "subjects", bundled=None)
    store.save(random_subject("tiny-live", root, seed=3))
    return Pipeline(subjects=store, device="cpu", limits=Limits(frames_per_chunk=4))


def _run(coro):
    return asyncio.run(asyncio.wait_for(coro, 180))


def test_idle_then_speech_then_barge_in(pipeline):
    from services.gateway.live.session import LiveSessions

    async def main():
        sessions = LiveSessions(pipeline, Limits(frames_per_chunk=4))
        client = LiveClient()
        try:
            sid, answer = await sessions.create(await client.offer(), "tiny-live")
            await client.accept(answer)

            # idle frames arrive before any speech, with silent audio
            await client.wait_for(lambda: len(client.video) >= 25)
            assert not any(e["type"] == "state" for _, e in client.events)  # stats events only
            assert max(rms for _, _, rms in client.audio) < 1e-3

            t_speak = time.perf_counter()
            assert sessions.speak(sid, SpeakRequest(text=TEXT), "") == {"utterance": 0, "queued": 1}
            ev = await client.wait_for(lambda: client.event("speaking", t_speak))
            first = await client.wait_for(lambda: client.video_at(ev["media_seconds"]))
            first_speaking_s = first - t_speak
            # the speech is audible from that media time on
            await client.wait_for(lambda: client.audio and client.audio[-1][1] > ev["media_seconds"] + 1.0)
            loud = [m for _, m, rms in client.audio if rms > 1e-3]
            assert loud and loud[0] >= ev["media_seconds"] - 1e-6

            t_int = time.perf_counter()
            assert sessions.get(sid).interrupt() == {"interrupted": [0]}
            ev_idle = await client.wait_for(lambda: client.event("idle", t_int))
            back = await client.wait_for(lambda: client.video_at(ev_idle["media_seconds"]))
            interrupt_s = back - t_int
            await asyncio.sleep(0.5)
            tail = [rms for _, m, rms in client.audio if m >= ev_idle["media_seconds"] + 0.1]
            assert tail and max(tail) < 1e-3  # silent again: the utterance stopped

            median, worst = client.av_offset()
            info = sessions.get(sid).info()
            print(f"\nfirst speaking frame {first_speaking_s * 1000:.0f} ms after speak; back to idle "
                  f"{interrupt_s * 1000:.0f} ms after interrupt; A/V offset at the client median "
                  f"{median * 1000:.1f} ms, max {worst * 1000:.1f} ms; server {info}")
            assert interrupt_s < 0.2
            # sent: video within 40 ms of its audio on average (pts are exact: one clock). At the
            # client, arrival times include aiortc's audio jitter buffer, which holds audio until
            # 4 packets (80 ms) are queued: audio comes out later than its video by up to that.
            assert info["av_offset_ms"] < 40
            assert -0.04 - 0.08 < median < 0.04
            assert first_speaking_s < 20
            assert info["speaking_frames"] > 0 and info["first_speaking_frame_s"]
            await sessions.end(sid)
            with pytest.raises(NotFound):
                sessions.speak(sid, SpeakRequest(text="Hi."), "")
        finally:
            await client.close()
            await sessions.close_all()
        assert sessions.count == 0 and not sessions.tasks()
        left = [t for t in asyncio.all_tasks() if t is not asyncio.current_task() and "live" in t.get_name()]
        assert not left, left

    _run(main())


def test_bad_input_and_limits(pipeline):
    from services.gateway.live.session import LiveSessions

    async def main():
        sessions = LiveSessions(pipeline, Limits(max_sessions=1))
        clients = [LiveClient(), LiveClient()]
        try:
            with pytest.raises(InvalidInput, match="SDP"):
                await sessions.create("this is not sdp", "tiny-live")
            with pytest.raises(InvalidInput, match="audio and video"):
                video_only = (await clients[0].offer()).split("m=audio")[0]
                await sessions.create(video_only, "tiny-live")
            with pytest.raises(InvalidInput):
                await sessions.create(await clients[0].offer(), "bad/subject")
            with pytest.raises(NotFound):
                sessions.get("0" * 32)
            with pytest.raises(InvalidInput):
                sessions.get("not-an-id")
            sid, answer = await sessions.create(await clients[0].offer(), "tiny-live")
            with pytest.raises(NotFound):
                sessions.get(sid, owner="someone else")
            with pytest.raises(ResourceExhausted) as e:
                await sessions.create(await clients[1].offer(), "tiny-live")
            assert e.value.retry_after_s and e.value.http_status == 429
            with pytest.raises(InvalidInput):  # the text check applies
                sessions.speak(sid, SpeakRequest(text="   "), "")
            await sessions.end(sid)
            with pytest.raises(NotFound):
                await sessions.end(sid)
        finally:
            for c in clients:
                await c.close()
            await sessions.close_all()
        assert sessions.count == 0 and not sessions.tasks()

    _run(main())


def test_idle_timeout_and_peer_going_away_end_sessions(pipeline):
    from services.gateway.live.session import LiveSessions

    def ended(sessions, reason: str) -> float:
        return sessions.metrics.ended.labels(reason)._value.get()

    async def main():
        timed = LiveSessions(pipeline, Limits(session_idle_seconds=1.0))
        plain = LiveSessions(pipeline, Limits())
        a, b = LiveClient(), LiveClient()
        try:
            _, ans = await timed.create(await a.offer(), "tiny-live")
            await a.accept(ans)
            _, ans = await plain.create(await b.offer(), "tiny-live")
            await b.accept(ans)
            await b.wait_for(lambda: len(b.video) >= 5)
            await b.close()  # the peer goes away
            await b.wait_for(lambda: plain.count == 0, timeout=20)
            assert ended(plain, "peer_gone") == 1
            await a.wait_for(lambda: timed.count == 0, timeout=20)  # nothing said for a second
            assert ended(timed, "idle_timeout") == 1 and len(a.video) >= 5
            assert 'talking_head_live_sessions_ended_total{reason="idle_timeout"} 1.0' in \
                timed.metrics.exposition().decode()
        finally:
            await a.close()
            await timed.close_all()
            await plain.close_all()
        assert not timed.tasks() and not plain.tasks()

    _run(main())
