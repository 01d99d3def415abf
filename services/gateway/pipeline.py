"""The pipeline: text/audio → TTS → (denoise) → encoder → renderer → a frame sink.

Sentence-level pipelining: a background thread reads sentence k+1 from the TTS stage while
sentence k is encoded and rendered, so the first frames exist after one sentence, not the
whole text. One `Pipeline` backs `talking-head say`, the HTTP API and gRPC `Speak`; its
`Stages` are this process's services (`LocalStages`) or the Ray deployments (the app's).
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np

from services.common.audio import pad_to_frames, resample, to_analysis_rate
from services.common.errors import Cancelled, InvalidInput
from services.common.types import AudioClip
from services.common.video import VideoSpec
from services.gateway.request import Limits, SpeakRequest, check_request
from services.gateway.sinks import MediaSink
from services.gateway.stages import LocalStages, Stages

#: Audio track rates AAC carries that TTS voices and uploads commonly have; others go to 16 kHz.
_AAC_FRIENDLY = (16_000, 22_050, 24_000, 32_000, 44_100, 48_000)
T = TypeVar("T")


@dataclass
class StageTimes:
    tts: float = 0.0
    denoise: float = 0.0
    encode: float = 0.0
    render: float = 0.0
    mux: float = 0.0
    first_chunk: float | None = None  # seconds from the request to the first media the sink delivered

    def as_dict(self) -> dict[str, float]:
        return {k: round(v, 3) for k, v in self.__dict__.items() if v is not None}


@dataclass
class SpeakResult:
    frames: int
    seconds: float
    fps: float
    times: StageTimes
    sentences: int
    extra: dict[str, Any] = field(default_factory=dict)


_DONE = object()


def _prefetch(items: Iterator[T], depth: int = 2) -> Iterator[tuple[T, float]]:
    """(item, seconds it took) from a thread that runs `depth` items ahead; re-raises its
    errors here. Closing the result stops the thread and closes `items`."""
    q: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(x: object) -> bool:
        while not stop.is_set():
            try:
                q.put(x, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def work() -> None:
        try:
            t0 = time.perf_counter()
            for item in items:
                if not put((item, time.perf_counter() - t0)):
                    return
                t0 = time.perf_counter()
            put(_DONE)
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer
            put(exc)
        finally:
            _close(items)

    threading.Thread(target=work, daemon=True, name="tts-prefetch").start()
    try:
        while True:
            item = q.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()


class Pipeline:
    def __init__(self, stages: Stages | None = None, *, limits: Limits | None = None, **local: Any) -> None:
        """`stages` default to this process's services; `local` are LocalStages' arguments
        (tts, encoder, denoiser, subjects, device)."""
        if stages is not None and local:
            raise TypeError("give stages or LocalStages arguments, not both")
        self.stages: Stages = stages if stages is not None else LocalStages(**local)
        self.limits = limits or Limits()

    def _speech(self, req: SpeakRequest) -> Iterator[tuple[AudioClip, float]]:
        """(audio, seconds its TTS took) per sentence; an uploaded clip is one sentence."""
        if req.text is None:
            assert req.audio is not None
            return iter([(req.audio, 0.0)])
        sentences = self.stages.sentences(req.text, req.lang, req.voice)
        return _prefetch(_audio_of(sentences))

    def run(self, req: SpeakRequest, sink: MediaSink, cancelled: Callable[[], bool] | None = None,
            progress: Callable[[int, int], None] | None = None) -> SpeakResult:
        """Say one request into `sink`; counts and stage times. `cancelled` is polled between
        frame batches (Cancelled is raised); `progress(frames in batch, frames so far)`."""
        req = check_request(req, self.limits)
        t_start = time.perf_counter()
        times = StageTimes()
        subject = self.stages.subject(req.subject)
        fps = subject.fps
        h, w = subject.size
        spec: VideoSpec | None = None
        n_frames = sentences = 0
        pose_offset = int(np.random.default_rng(req.seed).integers(0, 10_000))
        complete = False

        def check_cancel() -> None:
            if cancelled is not None and cancelled():
                raise Cancelled("request cancelled")

        speech = self._speech(req)
        try:
            for clip, tts_s in speech:
                times.tts += tts_s
                sentences += 1
                check_cancel()
                # Pad the sentence to whole frames so every sentence starts on a frame boundary.
                mux_rate = clip.sample_rate if clip.sample_rate in _AAC_FRIENDLY else 16_000
                padded, frames_here = pad_to_frames(
                    AudioClip(resample(clip.samples, clip.sample_rate, mux_rate), mux_rate), fps)
                samples = padded.samples
                analysis = to_analysis_rate(padded)  # the one resampling to 16 kHz
                if req.denoise:
                    t0 = time.perf_counter()
                    analysis = self.stages.enhance(analysis)
                    times.denoise += time.perf_counter() - t0
                t0 = time.perf_counter()
                codes = self.stages.encode(subject, analysis, req.lang)
                times.encode += time.perf_counter() - t0
                if len(codes) != frames_here:
                    raise InvalidInput(f"encoder gave {len(codes)} codes for {frames_here} frames")
                if spec is None:
                    spec = VideoSpec(width=w, height=h, fps=int(round(fps)), sample_rate=mux_rate,
                                     metadata={"subject": req.subject})
                    sink.open(spec)
                elif spec.sample_rate != mux_rate:
                    samples = resample(samples, mux_rate, spec.sample_rate)
                    mux_rate = spec.sample_rate
                start = 0
                t0 = time.perf_counter()
                batches = self.stages.render(subject, codes, req.static_pose, seed=req.seed + sentences,
                                             start=pose_offset + n_frames, frames_per_batch=req.frames_per_chunk,
                                             exact=req.exact)
                try:
                    for batch in batches:
                        t1 = time.perf_counter()
                        times.render += t1 - t0
                        check_cancel()
                        end = start + len(batch)
                        a0, a1 = int(round(start * mux_rate / fps)), int(round(end * mux_rate / fps))
                        sink.write(batch, samples[a0:a1])
                        n_frames += len(batch)
                        start = end
                        times.mux += time.perf_counter() - t1
                        if progress is not None:
                            progress(len(batch), n_frames)
                        t0 = time.perf_counter()
                finally:
                    _close(batches)
            if spec is None:
                raise InvalidInput("nothing to say")
            t1 = time.perf_counter()
            sink.close(complete=True)
            complete = True
            times.mux += time.perf_counter() - t1
        finally:
            _close(speech)
            if spec is not None and not complete:
                sink.close(complete=False)
        if sink.first_media_at is not None:
            times.first_chunk = sink.first_media_at - t_start
        return SpeakResult(frames=n_frames, seconds=n_frames / fps, fps=fps, times=times, sentences=sentences,
                           extra={"subject": subject.id, "size": [h, w]})


def _close(it: object) -> None:
    close = getattr(it, "close", None)
    if close is not None:  # a remote stream stops its replica here
        close()


def _audio_of(sentences: Iterator[Any]) -> Iterator[AudioClip]:
    try:
        for s in sentences:
            yield s.audio
    finally:
        _close(sentences)
