"""Live sessions of one replica: each a WebRTC peer streaming its timeline (idle loop,
queued speech, barge-in), and `LiveSessions`, which opens, finds and ends them within the
replica's limits (`max_sessions`, `session_idle_seconds`, `max_session_seconds`).

Speech renders through the same `Pipeline` as every other request, into an
`UtteranceSink`, one utterance at a time per session on a worker thread; the event loop
only moves frames from utterances to the tracks.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import importlib.util
import logging
import re
import secrets
import time
from dataclasses import replace
from collections import OrderedDict
from collections.abc import AsyncIterator
from typing import Any

from services.common.bundle import check_subject_id
from services.common.errors import Cancelled, InvalidInput, NotFound, ResourceExhausted, Unavailable
from services.common.rpc import status_of
from services.gateway.live.idle import IdleLoop, render_idle
from services.gateway.live.timeline import Slot, Timeline
from services.gateway.live.utterance import Utterance, UtteranceSink
from services.gateway.metrics import LiveMetrics
from services.gateway.pipeline import Pipeline
from services.gateway.request import CheckedRequest, Limits, SpeakRequest, check_request
from services.gateway.stages import SubjectInfo

log = logging.getLogger("ray.serve")
SESSION_ID = re.compile(r"[0-9a-f]{32}")
#: What a full replica tells clients to wait before retrying (seconds).
FULL_RETRY_AFTER_S = 30
#: Seconds a new session waits for the first frames of its subject's idle loop.
IDLE_FIRST_FRAMES_S = 120.0
#: Seconds between the stats events a session sends (and between limit checks).
STATS_EVERY_S = 1.0


def check_live_installed() -> None:
    if importlib.util.find_spec("aiortc") is None:  # the live extra
        raise Unavailable("live sessions need aiortc on the server: pip install 'talking-head[live]'")


def check_ice_servers(servers: Any) -> list[dict] | None:
    """The `args.live.ice_servers` setting (STUN/TURN for the peers): a list of
    {urls: str | [str], username?, credential?}; InvalidInput otherwise."""
    if servers is None:
        return None
    if not isinstance(servers, list):
        raise InvalidInput("live.ice_servers must be a list of {urls, username, credential}")
    for s in servers:
        urls = s.get("urls") if isinstance(s, dict) else None
        ok = isinstance(urls, str) or (isinstance(urls, list) and urls and all(isinstance(u, str) for u in urls))
        if not ok or set(s) - {"urls", "username", "credential"} or \
                any(not isinstance(s.get(k, ""), str) for k in ("username", "credential")):
            raise InvalidInput(f"live.ice_servers: bad entry {s!r} (keys: urls, username, credential)")
    return servers


class Session:
    def __init__(self, sid: str, owner: str, subject: SubjectInfo, idle: IdleLoop, manager: "LiveSessions") -> None:
        from services.gateway.live.peer import MediaStats, Peer

        self.id, self.owner, self.subject = sid, owner, subject
        self.manager = manager
        self.created = self.last_active = time.monotonic()
        self.timeline = Timeline(idle, subject.fps, on_state=self._on_state)
        self.stats = MediaStats()
        self.peer = Peer(self.timeline, self.stats, on_gone=lambda: manager.end_soon(self, "peer_gone"),
                         ice_servers=manager.ice_servers)
        self._renders: asyncio.Queue[Utterance] = asyncio.Queue()
        self._worker: asyncio.Task | None = None
        self._next_utterance = 0
        self.first_frame_s: list[float] = []
        self.render_fps: float | None = None
        self.closed = False
        self._subscribers: list[asyncio.Queue] = []

    async def connect(self, offer_sdp: str) -> str:
        answer = await self.peer.answer(offer_sdp)
        self._worker = asyncio.create_task(self._render_loop(), name=f"live-render-{self.id}")
        return answer

    # ---- speech -------------------------------------------------------------------------------
    def speak(self, req: CheckedRequest) -> dict:
        self.last_active = time.monotonic()
        uid = self._next_utterance
        self._next_utterance += 1
        u = Utterance(uid, req, self.timeline.samples_per_frame)
        self.timeline.enqueue(u)
        self._renders.put_nowait(u)
        return {"utterance": uid, "queued": self.timeline.pending}

    def interrupt(self) -> dict:
        self.last_active = time.monotonic()
        dropped = self.timeline.interrupt()
        return {"interrupted": [u.id for u in dropped]}

    async def _render_loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            u = await self._renders.get()
            if u.cancelled.is_set():
                continue
            # the pose joins what plays before it, within the track frames the idle loop shows
            u.req = replace(u.req, pose_start=self.timeline.anchor(u), pose_span=self.timeline.idle.n_frames)
            await loop.run_in_executor(self.manager.pool, self._render, u)
            if u.render_fps() is not None:
                self.render_fps = u.render_fps()
                self.manager.metrics.render_fps.observe(self.render_fps)
            if u.error is not None:
                code, _, message = status_of(u.error)
                self.event({"type": "error", "utterance": u.id, "code": code.name, "error": message})

    def _render(self, u: Utterance) -> None:
        try:
            self.manager.pipeline.run(u.req, UtteranceSink(u), cancelled=u.cancelled.is_set)
            u.finish()
        except Cancelled:
            u.finish()
        except BaseException as exc:  # noqa: BLE001 - reported on the data channel and in the log
            if status_of(exc)[1] >= 500:
                log.warning("live session %s utterance %d failed: %s", self.id, u.id, exc)
            u.finish(exc)

    def _on_state(self, state: str, u: Utterance | None, slot: Slot) -> None:
        if u is not None and u.first_frame_at is not None:
            latency = u.first_frame_at - u.queued_at
            self.first_frame_s.append(latency)
            self.manager.metrics.first_frame_seconds.observe(latency)
        self.event({"type": "state", "state": state, "utterance": slot.utterance, "slot": slot.index,
                    "pts": self.timeline.video_pts(slot.index), "media_seconds": slot.index / self.timeline.fps})

    # ---- events: to the peer's data channel and to subscribers (gRPC Converse) ----------------
    def event(self, ev: dict) -> None:
        self.peer.send(ev)
        for q in self._subscribers:
            if q.full():  # a subscriber that does not read loses its oldest events, not the session
                q.get_nowait()
            q.put_nowait(ev)

    def subscribe(self) -> asyncio.Queue:
        """A queue of this session's events; None after the last (the session ended)."""
        q: asyncio.Queue = asyncio.Queue(maxsize=256)
        if self.closed:
            q.put_nowait(None)
        else:
            self._subscribers.append(q)
        return q

    def unsubscribe(self, q: asyncio.Queue) -> None:
        if q in self._subscribers:
            self._subscribers.remove(q)

    # ---- what it measured -----------------------------------------------------------------------
    def info(self) -> dict[str, Any]:
        st, tl = self.stats, self.timeline
        elapsed = (time.perf_counter() - st.started_at) if st.started_at is not None else 0.0
        return {"id": self.id, "subject": self.subject.id, "state": tl.state, "queued": tl.pending,
                "fps": tl.fps, "sent_fps": round(st.video_frames / elapsed, 2) if elapsed > 0 else 0.0,
                "render_fps": None if self.render_fps is None else round(self.render_fps, 2),
                "video_frames": st.video_frames, "dropped_frames": st.dropped, "held_frames": tl.counts["held"],
                "speaking_frames": tl.counts["speaking"], "idle_frames": tl.counts["idle"],
                "media_seconds": round(st.audio_samples / 48_000, 3),
                "av_offset_ms": round(st.mean_offset * 1000, 2), "av_offset_max_ms": round(st.offset_max * 1000, 2),
                "first_speaking_frame_s": [round(x, 3) for x in self.first_frame_s],
                "age_s": round(time.monotonic() - self.created, 1)}

    async def close(self) -> None:
        self.closed = True
        for q in self._subscribers:
            if q.full():
                q.get_nowait()
            q.put_nowait(None)
        self._subscribers.clear()
        self.timeline.interrupt()
        if self._worker is not None:
            self._worker.cancel()
        await self.peer.close()
        if self._worker is not None:
            try:
                await self._worker
            except (asyncio.CancelledError, Exception):  # noqa: BLE001 - it is being torn down
                pass


class LiveSessions:
    """The live sessions of this process. Used from one event loop (the replica's)."""

    def __init__(self, pipeline: Pipeline, limits: Limits, metrics: LiveMetrics | None = None,
                 ice_servers: list[dict] | None = None, idle_cache: int = 4, id_prefix: str = "") -> None:
        """`id_prefix`: hex digits every session id here starts with (its host's tag)."""
        self.pipeline, self.limits = pipeline, limits
        self.metrics = metrics or LiveMetrics()
        self.id_prefix = id_prefix
        self.ice_servers = ice_servers
        self.pool = concurrent.futures.ThreadPoolExecutor(max_workers=limits.max_sessions,
                                                          thread_name_prefix="live")
        self._sessions: dict[str, Session] = {}
        self._opening = 0
        self._idle: OrderedDict[tuple[str, str], IdleLoop] = OrderedDict()
        self._idle_cache = idle_cache
        self._watch: asyncio.Task | None = None
        self._ending: set[asyncio.Task] = set()

    @property
    def count(self) -> int:
        return len(self._sessions)

    def tasks(self) -> set[asyncio.Task]:
        """Every task the sessions run (for checks that nothing is left behind)."""
        out = {s._worker for s in self._sessions.values() if s._worker is not None} | set(self._ending)
        if self._watch is not None and not self._watch.done():
            out.add(self._watch)
        return out

    # ---- opening ----------------------------------------------------------------------------------
    async def create(self, offer_sdp: Any, subject_id: Any, owner: str = "") -> tuple[str, str]:
        """(session id, SDP answer) for an offer; InvalidInput for a bad offer or subject,
        ResourceExhausted (retryable) past `max_sessions`."""
        check_live_installed()
        from services.gateway.live import peer

        if not isinstance(subject_id, str):
            raise InvalidInput("subject must be a string (a subject id)")
        subject_id = check_subject_id(subject_id or "demo")
        peer.check_offer(offer_sdp)
        if self.count + self._opening >= self.limits.max_sessions:
            raise ResourceExhausted(f"this replica holds its limit of {self.limits.max_sessions} live sessions; "
                                    f"retry in {FULL_RETRY_AFTER_S} s", retry_after_s=FULL_RETRY_AFTER_S)
        self._opening += 1
        try:
            subject = await asyncio.to_thread(self.pipeline.stages.subject, subject_id)
            idle = await self._idle_loop(subject)
            sid = self.id_prefix + secrets.token_hex(16)[len(self.id_prefix):]
            session = Session(sid, owner, subject, idle, self)
            try:
                answer = await session.connect(offer_sdp)
            except BaseException:
                await session.close()
                raise
            self._sessions[sid] = session
        finally:
            self._opening -= 1
        self.metrics.sessions.set(self.count)
        if self._watch is None or self._watch.done():
            self._watch = asyncio.create_task(self._watch_sessions(), name="live-sessions-watch")
        return sid, answer

    async def _idle_loop(self, subject: SubjectInfo) -> IdleLoop:
        key = (subject.id, subject.digest)
        idle = self._idle.get(key)
        if idle is None:
            idle = self._idle[key] = render_idle(self.pipeline.stages, subject,
                                                 frames_per_batch=self.limits.frames_per_chunk)
            while len(self._idle) > self._idle_cache:
                self._idle.popitem(last=False)[1].stop(timeout=0)
        self._idle.move_to_end(key)
        await asyncio.to_thread(idle.first.wait, IDLE_FIRST_FRAMES_S)
        if not idle.frames:
            self._idle.pop(key, None)
            if idle.error is not None:
                raise idle.error
            raise Unavailable(f"the idle loop of {subject.id} did not render in {IDLE_FIRST_FRAMES_S:g} s")
        return idle

    # ---- finding and ending -------------------------------------------------------------------------
    def get(self, sid: Any, owner: str = "") -> Session:
        if not isinstance(sid, str) or not SESSION_ID.fullmatch(sid):
            raise InvalidInput("a session id is 32 lower-case hex digits")
        s = self._sessions.get(sid)
        if s is None or s.owner != owner:  # someone else's session is as unknown as a missing one
            raise NotFound(f"no live session {sid} (ended, or never opened)")
        return s

    def speak(self, sid: Any, req: SpeakRequest, owner: str = "") -> dict:
        s = self.get(sid, owner)
        checked = check_request(replace(req, subject=s.subject.id), self.pipeline.limits)
        return s.speak(checked)

    def interrupt(self, sid: Any, owner: str = "") -> dict:
        return self.get(sid, owner).interrupt()

    def info(self, sid: Any, owner: str = "") -> dict:
        return self.get(sid, owner).info()

    async def events(self, sid: Any, owner: str = "") -> AsyncIterator[dict]:
        """The session's events (state, error, stats) from now until it ends."""
        s = self.get(sid, owner)
        q = s.subscribe()
        try:
            while (ev := await q.get()) is not None:
                yield ev
        finally:
            s.unsubscribe(q)

    async def end(self, sid: Any, owner: str = "", reason: str = "deleted") -> None:
        await self._end(self.get(sid, owner), reason)

    def end_soon(self, session: Session, reason: str) -> None:
        if session.closed:
            return
        task = asyncio.get_running_loop().create_task(self._end(session, reason))
        self._ending.add(task)
        task.add_done_callback(self._ending.discard)

    async def _end(self, session: Session, reason: str) -> None:
        if self._sessions.get(session.id) is not session:
            return
        del self._sessions[session.id]
        info = session.info()
        m = self.metrics
        m.sessions.set(self.count)
        m.ended.labels(reason).inc()
        m.sent_fps.observe(info["sent_fps"])
        m.av_offset_seconds.observe(info["av_offset_max_ms"] / 1000)
        m.dropped_frames.inc(info["dropped_frames"])
        m.held_frames.inc(info["held_frames"])
        await session.close()
        log.info("live session %s ended (%s): %s", session.id, reason, info)

    async def close_all(self) -> None:
        for s in list(self._sessions.values()):
            await self._end(s, "shutdown")
        if self._watch is not None:
            self._watch.cancel()
            try:
                await self._watch
            except asyncio.CancelledError:
                pass
        if self._ending:
            await asyncio.gather(*self._ending, return_exceptions=True)
        idle, self._idle = list(self._idle.values()), OrderedDict()
        for loop in idle:
            await asyncio.to_thread(loop.stop)
        self.pool.shutdown(wait=False, cancel_futures=True)

    async def _watch_sessions(self) -> None:
        """Ends sessions past their idle timeout or length; sends each its stats event."""
        while self._sessions:
            await asyncio.sleep(STATS_EVERY_S)
            now = time.monotonic()
            for s in list(self._sessions.values()):
                if now - s.last_active > self.limits.session_idle_seconds and s.timeline.state == "idle":
                    await self._end(s, "idle_timeout")
                elif now - s.created > self.limits.max_session_seconds:
                    await self._end(s, "max_length")
                else:
                    s.event({"type": "stats", **s.info()})
