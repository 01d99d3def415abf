"""Live sessions in-process: an aiortc client over loopback against `LiveSessions` on the
in-process pipeline. Per utterance: time from speak to the first speaking frame at the
client, interrupt to the first idle frame at the client (every other utterance is cut
short), and per session the A/V offset — sent (per slot, video frame vs its first audio)
and at the client (arrival of a video frame vs the audio of the same media time, which
includes aiortc's audio jitter buffer) — frames sent, dropped and held, and the CPU the
process used per second of session. Prints one JSON object.

    .venv/bin/python bench/live_session.py --subject demo --utterances 6 [--json out/live.json]
    .venv/bin/python bench/live_session.py --tiny            # a random-weight 32×32 subject
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import tempfile
import time
from pathlib import Path

import numpy as np

from services.gateway.live.client import LiveClient
from services.gateway.live.session import LiveSessions
from services.gateway.pipeline import Pipeline
from services.gateway.request import Limits, SpeakRequest

SENTENCES = ["Hello! Thanks for calling, how can I help you today?",
             "Your order shipped this morning and should arrive on Thursday.",
             "I can book that appointment for you right now.",
             "Is there anything else I can help you with?"]


def _cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


async def run(pipeline: Pipeline, subject: str, utterances: int, idle_s: float, minutes: float = 0.0) -> dict:
    sessions = LiveSessions(pipeline, Limits(frames_per_chunk=8))
    client = LiveClient()
    first, back = [], []
    try:
        t_open = time.perf_counter()
        sid, answer = await sessions.create(await client.offer(), subject)
        await client.accept(answer)
        await client.wait_for(lambda: len(client.video) >= 1, timeout=120)
        opened_s = time.perf_counter() - t_open
        await asyncio.sleep(idle_s)
        cpu0, wall0, frames0 = _cpu_s(), time.perf_counter(), len(client.video)
        await asyncio.sleep(5.0)  # idle only: the cost of a session that is not speaking
        idle_cpu = (_cpu_s() - cpu0) / (time.perf_counter() - wall0)
        idle_fps = (len(client.video) - frames0) / (time.perf_counter() - wall0)
        t_start, i = time.perf_counter(), 0
        while i < utterances or time.perf_counter() - t_start < minutes * 60:
            t0 = time.perf_counter()
            sessions.speak(sid, SpeakRequest(text=SENTENCES[i % len(SENTENCES)]), "")
            ev = await client.wait_for(lambda: client.event("speaking", t0), timeout=300)
            arrived = await client.wait_for(lambda: client.video_at(ev["media_seconds"]), timeout=60)
            first.append(arrived - t0)
            if i % 2:  # barge in a second into the speech
                await asyncio.sleep(1.0)
                t1 = time.perf_counter()
                sessions.interrupt(sid, "")
                ev = await client.wait_for(lambda: client.event("idle", t1), timeout=30)
                back.append(await client.wait_for(lambda: client.video_at(ev["media_seconds"])) - t1)
            else:
                await client.wait_for(lambda: client.event("idle", t0), timeout=600)
            await asyncio.sleep(idle_s)
            i += 1
        info = sessions.info(sid, "")
        median, worst = client.av_offset()
        t_end = time.perf_counter()
        first_min, _ = client.av_offset(until=t_start + 60)
        last_min, last_worst = client.av_offset(since=t_end - 60)
        return {"subject": subject, "session_open_s": round(opened_s, 3),
                "idle_sent_fps": round(idle_fps, 2), "idle_cpu_cores": round(idle_cpu, 3),
                "first_speaking_frame_s": [round(x, 3) for x in first],
                "interrupt_to_idle_s": [round(x, 3) for x in back],
                "av_offset_client_median_ms": round(median * 1000, 1),
                "av_offset_client_max_ms": round(worst * 1000, 1),
                "session_minutes": round((t_end - t_start) / 60, 2), "utterances": i,
                # drift: the same median over the session's first and last minute of speech and idle
                "av_offset_client_first_minute_median_ms": round(first_min * 1000, 1),
                "av_offset_client_last_minute_median_ms": round(last_min * 1000, 1),
                "av_offset_client_last_minute_max_ms": round(last_worst * 1000, 1),
                "server": info}
    finally:
        await client.close()
        await sessions.close_all()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--subject", default="demo")
    ap.add_argument("--tiny", action="store_true", help="a random-weight 32×32 subject instead")
    ap.add_argument("--utterances", type=int, default=4)
    ap.add_argument("--idle-s", type=float, default=1.0, help="idle seconds between utterances")
    ap.add_argument("--minutes", type=float, default=0.0,
                    help="keep speaking (at least --utterances) until the session has run this long")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    subjects = None
    subject = args.subject
    if args.tiny:
        from services.common.subject_store import LocalSubjectStore
        from services.training.random_subject import random_subject

        root = Path(tempfile.mkdtemp(prefix="th-live-"))
        subjects = LocalSubjectStore(root / "subjects", bundled=None)
        subjects.save(random_subject("tiny-live", root, seed=3))
        subject = "tiny-live"
    out = asyncio.run(run(Pipeline(subjects=subjects), subject, args.utterances, args.idle_s, args.minutes))
    out["first_speaking_frame_median_s"] = float(np.median(out["first_speaking_frame_s"]))
    text = json.dumps(out, indent=1)
    print(text)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(text)


if __name__ == "__main__":
    main()
