"""The server's WebRTC side of a live session (aiortc, imported only here and in client.py):
the SDP offer/answer, an audio and a video track reading the session's `Timeline`, and the
`events` data channel.

The audio track is the clock: it sends 20 ms of audio every 20 ms of wall time. The video
track sends slot k once the audio has reached slot k, so video never runs ahead of audio;
when it has fallen more than a slot behind (a slow encoder, a busy loop) it skips to the
slot the audio is in (dropped frames) rather than drift.
"""

from __future__ import annotations

import asyncio
import fractions
import json
import logging
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from services.common.errors import InvalidInput
from services.gateway.live.timeline import VIDEO_CLOCK_RATE, Timeline
from services.gateway.live.utterance import LIVE_SAMPLE_RATE

log = logging.getLogger("ray.serve")
#: Samples per audio packet (20 ms).
AUDIO_PTIME_SAMPLES = LIVE_SAMPLE_RATE // 50


class MediaStats:
    """What the tracks measured: frames sent and dropped, and the A/V offset — per slot, the
    wall time between sending its video frame and sending its first audio."""

    def __init__(self) -> None:
        self.started_at: float | None = None
        self.audio_samples = 0          # audio sent so far (the clock)
        self.video_frames = 0
        self.dropped = 0
        self.offset_sum = 0.0
        self.offset_n = 0
        self.offset_max = 0.0
        self._audio_slot_at: dict[int, float] = {}
        self._tick = asyncio.Event()

    def audio_sent(self, slot: int | None, samples: int) -> None:
        now = time.perf_counter()
        if self.started_at is None:
            self.started_at = now
        if slot is not None:
            self._audio_slot_at[slot] = now
            self._audio_slot_at.pop(slot - 64, None)
        self.audio_samples += samples
        self._tick.set()
        self._tick = asyncio.Event()

    async def audio_reached(self, sample: int) -> None:
        while self.audio_samples <= sample:
            await self._tick.wait()

    def video_sent(self, slot: int) -> None:
        self.video_frames += 1
        sent = self._audio_slot_at.get(slot)
        if sent is not None:
            offset = time.perf_counter() - sent
            self.offset_sum += offset
            self.offset_n += 1
            self.offset_max = max(self.offset_max, abs(offset))

    @property
    def mean_offset(self) -> float:
        return self.offset_sum / self.offset_n if self.offset_n else 0.0


def check_offer(sdp: Any) -> None:
    """InvalidInput unless `sdp` is an SDP offer with an audio and a video section that can
    receive (recvonly or sendrecv)."""
    from aiortc.sdp import SessionDescription

    if not isinstance(sdp, str) or not sdp.strip():
        raise InvalidInput("the offer must be an SDP string")
    if not sdp.lstrip().startswith("v=0"):
        raise InvalidInput("malformed SDP offer: it must start with v=0")
    try:
        parsed = SessionDescription.parse(sdp)
    except Exception as exc:  # noqa: BLE001 - any parse failure is the client's
        raise InvalidInput(f"malformed SDP offer: {type(exc).__name__}: {exc}") from None
    kinds = {m.kind for m in parsed.media if m.direction in ("recvonly", "sendrecv")}
    missing = {"audio", "video"} - kinds
    if missing:
        raise InvalidInput(f"the offer must receive audio and video (missing: {', '.join(sorted(missing))})")


def _tracks(timeline: Timeline, stats: MediaStats) -> tuple[Any, Any]:
    import av
    from aiortc import MediaStreamTrack

    spf = timeline.samples_per_frame
    audio_base = fractions.Fraction(1, LIVE_SAMPLE_RATE)
    video_base = fractions.Fraction(1, VIDEO_CLOCK_RATE)

    class AudioTrack(MediaStreamTrack):
        kind = "audio"

        def __init__(self) -> None:
            super().__init__()
            self._n = 0

        async def recv(self) -> Any:
            start = self._n * AUDIO_PTIME_SAMPLES
            if stats.started_at is not None:  # pace by the wall clock; a late loop catches up
                wait = stats.started_at + start / LIVE_SAMPLE_RATE - time.perf_counter()
                if wait > 0:
                    await asyncio.sleep(wait)
            index, offset = divmod(start, spf)
            slot = timeline.slot(index)
            chunk = slot.audio[offset:offset + AUDIO_PTIME_SAMPLES]
            pcm = (np.clip(chunk, -1.0, 1.0) * 32767).astype(np.int16)[None, :]
            frame = av.AudioFrame.from_ndarray(pcm, format="s16", layout="mono")
            frame.sample_rate, frame.pts, frame.time_base = LIVE_SAMPLE_RATE, start, audio_base
            self._n += 1
            stats.audio_sent(index if offset == 0 else None, AUDIO_PTIME_SAMPLES)
            return frame

    class VideoTrack(MediaStreamTrack):
        kind = "video"

        def __init__(self) -> None:
            super().__init__()
            self._k = 0

        async def recv(self) -> Any:
            k = self._k
            await stats.audio_reached(k * spf)
            current = (stats.audio_samples - 1) // spf  # the slot the audio is in
            if current > k:
                stats.dropped += current - k
                k = current
            slot = timeline.slot(k)
            frame = av.VideoFrame.from_ndarray(slot.image, format="rgb24")
            frame.pts, frame.time_base = timeline.video_pts(k), video_base
            self._k = k + 1
            stats.video_sent(k)
            return frame

    return AudioTrack(), VideoTrack()


class Peer:
    """One RTCPeerConnection sending a timeline; `events` go out on the client's data channel
    (when it opened one) as JSON."""

    def __init__(self, timeline: Timeline, stats: MediaStats, on_gone: Callable[[], None],
                 ice_servers: list[dict] | None = None) -> None:
        from aiortc import RTCConfiguration, RTCIceServer, RTCPeerConnection

        config = RTCConfiguration([RTCIceServer(**s) for s in ice_servers]) if ice_servers else None
        self.pc = RTCPeerConnection(config)
        self.timeline, self.stats = timeline, stats
        self._channel: Any = None
        self._on_gone = on_gone

        @self.pc.on("datachannel")
        def _channel(channel: Any) -> None:
            self._channel = channel

        @self.pc.on("connectionstatechange")
        async def _state() -> None:
            if self.pc.connectionState in ("failed", "closed"):
                self._on_gone()

    async def answer(self, offer_sdp: str) -> str:
        from aiortc import RTCSessionDescription

        check_offer(offer_sdp)
        try:
            await self.pc.setRemoteDescription(RTCSessionDescription(sdp=offer_sdp, type="offer"))
        except Exception as exc:  # noqa: BLE001 - aiortc refuses what it cannot use
            raise InvalidInput(f"unusable SDP offer: {type(exc).__name__}: {exc}") from None
        audio, video = _tracks(self.timeline, self.stats)
        self.pc.addTrack(audio)
        self.pc.addTrack(video)
        await self.pc.setLocalDescription(await self.pc.createAnswer())  # gathers ICE: no trickle
        return self.pc.localDescription.sdp

    def send(self, event: dict) -> None:
        ch = self._channel
        if ch is not None and ch.readyState == "open":
            try:
                ch.send(json.dumps(event))
            except Exception as exc:  # noqa: BLE001 - a closing channel: events are best effort
                log.debug("live event not sent: %s", exc)

    async def close(self) -> None:
        self._on_gone = lambda: None
        await self.pc.close()
