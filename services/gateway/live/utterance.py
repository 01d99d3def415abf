"""One speak request of a live session: its frames and 48 kHz audio as the render makes them
(`Utterance`), filled by `UtteranceSink`, the `MediaSink` that `Pipeline.run` writes to.

The render thread pushes; the session's timeline takes frame j with the audio it spans from
the event loop. A render that runs ahead of playback by `max_ahead` frames waits (bounded
memory); interrupting it wakes it and the pipeline stops at its next frame batch.
"""

from __future__ import annotations

import threading
import time
from collections import deque

import numpy as np

from services.common.errors import Cancelled
from services.common.video import VideoSpec
from services.gateway.request import CheckedRequest

#: The one audio rate of a live session (Opus runs at 48 kHz).
LIVE_SAMPLE_RATE = 48_000
#: Returned by `Utterance.take` once every frame has been taken.
END = object()


class Utterance:
    def __init__(self, uid: int, req: CheckedRequest, samples_per_frame: int, max_ahead: int = 250) -> None:
        self.id = uid
        self.req = req
        self.samples_per_frame = samples_per_frame
        self.max_ahead = max_ahead
        self.cancelled = threading.Event()
        self.error: BaseException | None = None
        self.queued_at = time.perf_counter()
        self.render_started_at: float | None = None
        self.first_frame_at: float | None = None  # when its first frame went on the timeline
        self.finished_at: float | None = None
        self._cond = threading.Condition()
        self._frames: deque[np.ndarray] = deque()
        self._audio: deque[np.ndarray] = deque()  # 48 kHz pieces, in order
        self._audio_len = 0
        self._taken = 0
        self._rendered = 0
        self._done = False

    # ---- the render thread -------------------------------------------------------------------
    def push(self, frames: np.ndarray, audio48k: np.ndarray) -> None:
        with self._cond:
            while self._rendered - self._taken >= self.max_ahead and not self.cancelled.is_set():
                self._cond.wait(0.1)
            if self.cancelled.is_set():
                raise Cancelled("utterance interrupted")
            if self.render_started_at is None:
                self.render_started_at = time.perf_counter()
            self._frames.extend(frames)
            self._rendered += len(frames)
            if len(audio48k):
                self._audio.append(audio48k.astype(np.float32, copy=False))
                self._audio_len += len(audio48k)

    def finish(self, error: BaseException | None = None) -> None:
        with self._cond:
            self.error = error
            self.finished_at = time.perf_counter()
            self._done = True
            self._cond.notify_all()

    def cancel(self) -> None:
        self.cancelled.set()
        with self._cond:
            self._cond.notify_all()

    # ---- the timeline (event loop) ---------------------------------------------------------
    @property
    def rendered(self) -> int:
        return self._rendered

    @property
    def done(self) -> bool:
        return self._done

    @property
    def taken(self) -> int:
        """Frames the timeline has taken."""
        return self._taken

    @property
    def buffered(self) -> int:
        """Frames rendered and not taken yet."""
        return self._rendered - self._taken

    def render_fps(self) -> float | None:
        """Frames rendered per wall second from the first batch to the last (or to now)."""
        if self.render_started_at is None or self._rendered < 2:
            return None
        end = self.finished_at if self.finished_at is not None else time.perf_counter()
        return self._rendered / max(end - self.render_started_at, 1e-6)

    def take(self) -> tuple[np.ndarray, np.ndarray] | object | None:
        """The next frame and its audio (samples_per_frame at 48 kHz); None when it is not
        rendered yet; END after the last one (or once it failed or was interrupted)."""
        spf = self.samples_per_frame
        with self._cond:
            if self.cancelled.is_set() or (self.error is not None):
                return END
            if not self._frames:
                return END if self._done else None
            if self._audio_len < spf and not self._done:
                return None
            frame = self._frames.popleft()
            audio = self._pop_audio(spf)
            self._taken += 1
            self._cond.notify_all()
            return frame, audio

    def _pop_audio(self, n: int) -> np.ndarray:
        out = np.zeros(n, np.float32)
        filled = 0
        while filled < n and self._audio:
            piece = self._audio[0]
            k = min(n - filled, len(piece))
            out[filled:filled + k] = piece[:k]
            filled += k
            if k == len(piece):
                self._audio.popleft()
            else:
                self._audio[0] = piece[k:]
        self._audio_len -= filled
        return out


class UtteranceSink:
    """The pipeline's frames and audio into an `Utterance`, the audio resampled to 48 kHz
    as one stream (no seams between batches)."""

    first_media_at: float | None = None

    def __init__(self, utterance: Utterance) -> None:
        self.utterance = utterance
        self._resampler = None
        self._rate = LIVE_SAMPLE_RATE

    def open(self, spec: VideoSpec) -> None:
        import av

        self._rate = spec.sample_rate
        if spec.sample_rate != LIVE_SAMPLE_RATE:
            self._resampler = av.AudioResampler(format="flt", layout="mono", rate=LIVE_SAMPLE_RATE)

    def _resample(self, audio: np.ndarray | None) -> np.ndarray:
        if self._resampler is None:
            return np.zeros(0, np.float32) if audio is None else audio.astype(np.float32)
        import av

        frame = None
        if audio is not None:
            frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(audio, np.float32)[None, :], format="flt",
                                               layout="mono")
            frame.sample_rate = self._rate
        out = [f.to_ndarray()[0] for f in self._resampler.resample(frame)]
        return np.concatenate(out) if out else np.zeros(0, np.float32)

    def write(self, frames: np.ndarray, audio: np.ndarray) -> None:
        self.utterance.push(frames, self._resample(audio))
        if self.first_media_at is None:
            self.first_media_at = time.perf_counter()

    def close(self, complete: bool) -> None:
        if complete:
            self.utterance.push(frames=np.zeros((0, 1, 1, 3), np.uint8), audio48k=self._resample(None))
