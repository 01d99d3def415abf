"""The pipeline: text/audio → TTS → (denoise) → encoder → renderer → a frame sink.

The stages overlap, each on a thread of its own: TTS makes sentence k+1 while sentence k
is encoded (the encode thread runs one sentence ahead of the render), the render loop
renders, and the mux thread encodes and delivers batch b while batch b+1 renders. The
request's first frames are rendered as a small batch of their own, so the first chunk
goes out as soon as they exist. One `Pipeline` backs `talking-head say`, the HTTP API and
gRPC `Speak`; its `Stages` are this process's services (`LocalStages`) or the Ray
deployments (the app's).
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import numpy as np

from services.common.audio import pad_to_frames, resample, to_analysis_rate
from services.common.errors import Cancelled, InvalidInput
from services.common.types import AudioClip, walk_start
from services.common.video import VideoSpec
from services.gateway.request import Limits, SpeakRequest, check_request
from services.gateway.sinks import MediaSink
from services.gateway.stages import LocalStages, Stages, SubjectInfo

#: Audio track rates AAC carries that TTS voices and uploads commonly have; others go to 16 kHz.
_AAC_FRIENDLY = (16_000, 22_050, 24_000, 32_000, 44_100, 48_000)
#: Frames of a request's first render batch (when frames_per_chunk is larger): one per
#: thread of a two-core render; the first chunk waits for these only.
FIRST_BATCH_FRAMES = 2
T = TypeVar("T")


@dataclass
class StageTimes:
    tts: float = 0.0
    denoise: float = 0.0
    encode: float = 0.0
    render: float = 0.0
    mux: float = 0.0
    first_frame: float | None = None  # seconds from the request to the first rendered frames
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


class _Prefetch(Generic[T]):
    """(item, seconds it took) from a thread that runs `depth` items ahead of the reader,
    started at once; the thread's errors are raised to the reader. `close` stops the
    thread (at its next item) and closes `items` there."""

    def __init__(self, items: Iterator[T], depth: int = 2, name: str = "tts-prefetch",
                 stop: threading.Event | None = None) -> None:
        self._items = items
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._stop = stop or threading.Event()  # `items` may watch it to stop sooner
        # Not a daemon: a process that exits (say on an error) waits for the thread to leave
        # native code (a voice loading, a sentence encoding) instead of aborting under it.
        threading.Thread(target=self._work, name=name).start()

    def _put(self, x: object) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(x, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _work(self) -> None:
        try:
            t0 = time.perf_counter()
            for item in self._items:
                if not self._put((item, time.perf_counter() - t0)):
                    return
                t0 = time.perf_counter()
            self._put(_DONE)
        except BaseException as exc:  # noqa: BLE001 - handed to the reader
            self._put(exc)
        finally:
            _close(self._items)

    def __iter__(self) -> _Prefetch[T]:
        return self

    def __next__(self) -> tuple[T, float]:
        if self._stop.is_set():
            raise StopIteration
        item = self._queue.get()
        if item is _DONE:
            self.close()
            raise StopIteration
        if isinstance(item, BaseException):
            self.close()
            raise item
        return item

    def close(self) -> None:
        self._stop.set()


@dataclass
class _Sentence:
    """One sentence ready to render: its audio at the mux rate, its codes, stage seconds."""

    samples: np.ndarray
    rate: int
    codes: np.ndarray
    tts: float
    denoise: float
    encode: float


class _MuxThread:
    """`sink.write` of each batch on a thread of its own, in order: batch b is encoded and
    delivered while batch b+1 renders. A write error is raised by the next `write` or by
    `finish`; `stop` drops what is still queued."""

    def __init__(self, sink: MediaSink, progress: Callable[[int, int], None] | None, depth: int = 2) -> None:
        self._sink, self._progress = sink, progress
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._error: BaseException | None = None
        self._dropping = False
        self.seconds = 0.0
        self.frames = 0
        self._thread = threading.Thread(target=self._work, daemon=True, name="mux")
        self._thread.start()

    def _work(self) -> None:
        while (item := self._queue.get()) is not _DONE:
            if self._error is not None or self._dropping:
                continue
            frames, audio = item
            t0 = time.perf_counter()
            try:
                self._sink.write(frames, audio)
                self.frames += len(frames)
                if self._progress is not None:
                    self._progress(len(frames), self.frames)
            except BaseException as exc:  # noqa: BLE001 - raised on the pipeline's thread
                self._error = exc
            self.seconds += time.perf_counter() - t0

    def _raise(self) -> None:
        if self._error is not None:
            raise self._error

    def write(self, frames: np.ndarray, audio: np.ndarray) -> None:
        self._raise()
        self._queue.put((frames, audio))

    def finish(self) -> None:
        """Wait until every batch is written; raise the first write error."""
        self.stop(drop=False)
        self._raise()

    def stop(self, drop: bool = True) -> None:
        if self._thread.is_alive():
            self._dropping = drop
            self._queue.put(_DONE)
            self._thread.join()


class Pipeline:
    def __init__(self, stages: Stages | None = None, *, limits: Limits | None = None, **local: Any) -> None:
        """`stages` default to this process's services; `local` are LocalStages' arguments
        (tts, encoder, denoiser, subjects, device)."""
        if stages is not None and local:
            raise TypeError("give stages or LocalStages arguments, not both")
        self.stages: Stages = stages if stages is not None else LocalStages(**local)
        self.limits = limits or Limits()

    def _speech(self, req: SpeakRequest) -> Iterator[tuple[AudioClip, float]]:
        """(audio, seconds its TTS took) per sentence; an uploaded clip is one sentence.
        The TTS starts at once on its own thread (loading its voice there), and its
        errors, bad text included, are raised where the sentences are read."""
        if req.text is None:
            assert req.audio is not None
            return iter([(req.audio, 0.0)])
        stop = threading.Event()
        return _Prefetch(self._audio(req.text, req.lang, req.voice, stop), stop=stop)

    def _audio(self, text: str, lang: str, voice: str | None, stop: threading.Event) -> Iterator[AudioClip]:
        sentences = iter(self.stages.sentences(text, lang, voice))  # loads the voice (on the prefetch thread)
        try:
            while not stop.is_set():  # a request that failed meanwhile (its subject) synthesises nothing
                speech = next(sentences, None)
                if speech is None:
                    return
                yield speech.audio
        finally:
            _close(sentences)

    def _prepared(self, req: SpeakRequest, subject: SubjectInfo,
                  speech: Iterator[tuple[AudioClip, float]]) -> Iterator[_Sentence]:
        """Each sentence of `speech` padded to whole frames, resampled once to 16 kHz
        (optionally denoised) and encoded, as the TTS delivers it."""
        try:
            for clip, tts_s in speech:
                mux_rate = clip.sample_rate if clip.sample_rate in _AAC_FRIENDLY else 16_000
                # Pad the sentence to whole frames so every sentence starts on a frame boundary.
                padded, frames_here = pad_to_frames(
                    AudioClip(resample(clip.samples, clip.sample_rate, mux_rate), mux_rate), subject.fps)
                analysis = to_analysis_rate(padded)  # the one resampling to 16 kHz
                denoise_s = 0.0
                if req.denoise:
                    t0 = time.perf_counter()
                    analysis = self.stages.enhance(analysis)
                    denoise_s = time.perf_counter() - t0
                t0 = time.perf_counter()
                codes = self.stages.encode(subject, analysis, req.lang)
                encode_s = time.perf_counter() - t0
                if len(codes) != frames_here:
                    raise InvalidInput(f"encoder gave {len(codes)} codes for {frames_here} frames")
                yield _Sentence(padded.samples, mux_rate, codes, tts_s, denoise_s, encode_s)
        finally:
            _close(speech)

    def run(self, req: SpeakRequest, sink: MediaSink, cancelled: Callable[[], bool] | None = None,
            progress: Callable[[int, int], None] | None = None) -> SpeakResult:
        """Say one request into `sink`; counts and stage times (seconds each stage was busy;
        they overlap). `cancelled` is polled between frame batches (Cancelled is raised);
        `progress(frames in batch, frames so far)` is called from the mux thread."""
        req = check_request(req, self.limits)
        t_start = time.perf_counter()
        times = StageTimes()
        # The TTS speaks while the subject opens (and, in a new process, while torch and
        # the models load); a subject error is still the one raised first.
        speech = self._speech(req)
        try:
            subject = self.stages.subject(req.subject)
        except BaseException:
            _close(speech)
            raise
        fps = subject.fps
        h, w = subject.size
        spec: VideoSpec | None = None
        n_frames = sentences = 0
        pose_offset = req.pose_start if req.pose_start is not None else walk_start(req.seed)
        complete = False

        def check_cancel() -> None:
            if cancelled is not None and cancelled():
                raise Cancelled("request cancelled")

        prepared = _Prefetch(self._prepared(req, subject, speech), depth=1, name="encode")
        mux = _MuxThread(sink, progress)
        try:
            for sent, _ in prepared:
                times.tts += sent.tts
                times.denoise += sent.denoise
                times.encode += sent.encode
                sentences += 1
                check_cancel()
                samples, mux_rate = sent.samples, sent.rate
                if spec is None:
                    spec = VideoSpec(width=w, height=h, fps=int(round(fps)), sample_rate=mux_rate,
                                     metadata={"subject": req.subject})
                    sink.open(spec)
                elif spec.sample_rate != mux_rate:
                    samples = resample(samples, mux_rate, spec.sample_rate)
                    mux_rate = spec.sample_rate
                start = 0
                t0 = time.perf_counter()
                batches = self.stages.render(subject, sent.codes, req.static_pose, seed=req.seed + sentences,
                                             start=pose_offset + n_frames, frames_per_batch=req.frames_per_chunk,
                                             exact=req.exact, first_batch=FIRST_BATCH_FRAMES if n_frames == 0 else 0,
                                             pose_span=req.pose_span)
                try:
                    for batch in batches:
                        t1 = time.perf_counter()
                        times.render += t1 - t0
                        if times.first_frame is None:
                            times.first_frame = t1 - t_start
                        check_cancel()
                        end = start + len(batch)
                        a0, a1 = int(round(start * mux_rate / fps)), int(round(end * mux_rate / fps))
                        mux.write(batch, samples[a0:a1])
                        n_frames += len(batch)
                        start = end
                        t0 = time.perf_counter()
                finally:
                    _close(batches)
            if spec is None:
                raise InvalidInput("nothing to say")
            mux.finish()
            t1 = time.perf_counter()
            sink.close(complete=True)
            complete = True
            times.mux += time.perf_counter() - t1
        finally:
            _close(prepared)
            _close(speech)
            mux.stop()
            times.mux += mux.seconds
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

