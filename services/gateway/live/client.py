"""A Python client of live sessions (aiortc): receives a session's tracks and events and
notes when each frame arrives and at which media time, for tests, benchmarks and as an
example. Media time is the frame's pts relative to the first frame of its track (aiortc's
receiver counts from there; the server starts both tracks at 0).

    client = LiveClient()
    sid, answer = await sessions.create(await client.offer(), "demo")   # or POST /v1/sessions
    await client.accept(answer)
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from typing import Any

import numpy as np


class LiveClient:
    """An aiortc peer that receives the session's tracks and its events, noting the wall
    time each frame arrives with its media time (pts relative to the first frame)."""

    def __init__(self, ice_servers: list[dict] | None = None) -> None:
        from aiortc import RTCConfiguration, RTCIceServer, RTCPeerConnection

        config = RTCConfiguration([RTCIceServer(**x) for x in ice_servers]) if ice_servers else None
        self.pc = RTCPeerConnection(config)
        self.pc.addTransceiver("video", direction="recvonly")
        self.pc.addTransceiver("audio", direction="recvonly")
        self.channel = self.pc.createDataChannel("events")
        self.events: list[tuple[float, dict]] = []
        self.video: list[tuple[float, float]] = []          # (arrival, media seconds)
        self.audio: list[tuple[float, float, float]] = []   # (arrival, media seconds, rms)
        self._readers: list[asyncio.Task] = []

        @self.channel.on("message")
        def _message(msg: str) -> None:
            self.events.append((time.perf_counter(), json.loads(msg)))

        @self.pc.on("track")
        def _track(track: Any) -> None:
            self._readers.append(asyncio.ensure_future(self._read(track)))

    async def _read(self, track: Any) -> None:
        from aiortc.mediastreams import MediaStreamError

        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                return
            now = time.perf_counter()
            t = float(frame.pts * frame.time_base)
            if track.kind == "video":
                self.video.append((now, t))
            else:
                pcm = frame.to_ndarray().astype(np.float32) / 32768
                self.audio.append((now, t, float(np.sqrt(np.mean(pcm ** 2)))))

    async def offer(self) -> str:
        await self.pc.setLocalDescription(await self.pc.createOffer())
        return self.pc.localDescription.sdp

    async def accept(self, answer: str) -> None:
        from aiortc import RTCSessionDescription

        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))

    async def wait_for(self, what: Callable[[], Any], timeout: float = 30.0) -> Any:
        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline:
            found = what()
            if found:
                return found
            await asyncio.sleep(0.01)
        raise AssertionError(f"timed out after {timeout} s waiting for {what}")

    def event(self, state: str, after: float) -> dict | None:
        """The first state event `state` that arrived at or after perf_counter() `after`."""
        return next((e for t, e in self.events if t >= after and e["type"] == "state" and e["state"] == state),
                    None)

    def video_at(self, media_s: float) -> float | None:
        """Arrival time of the first video frame at or after media time `media_s`."""
        return next((t for t, m in self.video if m >= media_s - 1e-6), None)

    def av_offset(self, since: float = float("-inf"), until: float = float("inf")) -> tuple[float, float]:
        """(median, max |x|) over video frames arrived between perf_counter() `since` and `until`
        of arrival(video) − arrival(audio of the same media time), in seconds."""
        a_media = np.array([m for _, m, _ in self.audio])
        a_arrival = np.array([t for t, _, _ in self.audio])
        offsets = [t - a_arrival[i] for t, m in self.video
                   if since <= t <= until
                   and (i := int(np.searchsorted(a_media, m - 1e-6))) < len(a_media) and abs(a_media[i] - m) < 0.021]
        return float(np.median(offsets)), float(np.max(np.abs(offsets)))

    async def close(self) -> None:
        await self.pc.close()
        for r in self._readers:
            r.cancel()
        await asyncio.gather(*self._readers, return_exceptions=True)
