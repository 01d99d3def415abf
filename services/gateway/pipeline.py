"""The in-process pipeline: text/audio → TTS → (denoise) → encoder → renderer → mp4 / fMP4 chunks.

Sentence-level pipelining: a background thread synthesises sentence k+1 while sentence k
is encoded and rendered, so the first video chunk exists after one sentence, not the
whole text. The same `Pipeline` backs `talking-head say`, the HTTP API and gRPC `Speak`
in-process; the Ray app composes the same service classes across replicas.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from services.common.audio import pad_to_frames, resample, to_analysis_rate
from services.common.errors import Cancelled, InvalidInput
from services.common.types import AudioClip, Speech
from services.common.video import Mp4Muxer, VideoSpec

_AAC_FRIENDLY = (16_000, 22_050, 24_000, 32_000, 44_100, 48_000)


@dataclass
class SpeakRequest:
    text: str | None = None
    audio: AudioClip | None = None
    subject: str = "demo"
    lang: str = "en"
    voice: str | None = None
    static_pose: bool = False
    denoise: bool | None = None  # None: on for uploaded audio, off for TTS
    frames_per_chunk: int = 8
    seed: int = 0

    def validate(self) -> None:
        if (self.text is None) == (self.audio is None):
            raise InvalidInput("give exactly one of text or audio")
        if self.frames_per_chunk < 1 or self.frames_per_chunk > 250:
            raise InvalidInput("frames_per_chunk must be between 1 and 250")


@dataclass
class StageTimes:
    tts: float = 0.0
    denoise: float = 0.0
    encode: float = 0.0
    render: float = 0.0
    mux: float = 0.0
    first_chunk: float | None = None

    def as_dict(self) -> dict[str, float]:
        d = {k: round(v, 3) for k, v in self.__dict__.items() if v is not None}
        return d


@dataclass
class Chunk:
    data: bytes
    index: int
    frames_so_far: int
    seconds_so_far: float
    is_init: bool = False
    is_last: bool = False


@dataclass
class SpeakResult:
    frames: int
    seconds: float
    fps: float
    times: StageTimes
    sentences: int
    extra: dict[str, Any] = field(default_factory=dict)


def _prefetch(it: Iterator[Speech], depth: int = 2) -> Iterator[tuple[Speech, float]]:
    """Run an iterator in a thread, `depth` items ahead; re-raises its errors here."""
    q: queue.Queue = queue.Queue(maxsize=depth)
    done = object()
    stop = threading.Event()

    def work() -> None:
        try:
            t0 = time.perf_counter()
            for item in it:
                q.put((item, time.perf_counter() - t0))
                if stop.is_set():
                    return
                t0 = time.perf_counter()
            q.put(done)
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer
            q.put(exc)

    threading.Thread(target=work, daemon=True, name="tts-prefetch").start()
    try:
        while True:
            item = q.get()
            if item is done:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()


class Pipeline:
    def __init__(self, tts: Any = None, encoder: Any = None, renderer: Any = None, denoiser: Any = None,
                 subjects: Any = None) -> None:
        """Services are created lazily from their defaults when not given."""
        self._tts, self._encoder, self._renderer, self._denoiser = tts, encoder, renderer, denoiser
        self._subjects = subjects
        self._heads: dict[str, Any] = {}

    # ---- lazily built services -----------------------------------------------------------
    @property
    def tts(self) -> Any:
        if self._tts is None:
            from services.tts.service import TtsService

            self._tts = TtsService()
        return self._tts

    @property
    def encoder(self) -> Any:
        if self._encoder is None:
            from services.encoder.service import EncoderService

            self._encoder = EncoderService()
        return self._encoder

    @property
    def renderer(self) -> Any:
        if self._renderer is None:
            from services.common.subject_store import LocalSubjectStore
            from services.renderer.service import RendererService

            self._renderer = RendererService(self._subjects or LocalSubjectStore())
        return self._renderer

    @property
    def denoiser(self) -> Any:
        if self._denoiser is None:
            from services.denoise.service import DenoiseService

            self._denoiser = DenoiseService()
        return self._denoiser

    def _head(self, subject: Any) -> Any:
        """The subject's audio-encoder head (cached per bundle version)."""
        from services.encoder.service import load_head

        key = subject.digest
        if key not in self._heads:
            cfg = subject.manifest["audio_encoder"]["config"]
            self._heads[key] = load_head(cfg, subject.encoder_weights, prefix="audio_encoder.")
        return self._heads[key]

    # ---- stage hooks: the Ray app overrides these to call deployments instead -------------
    def open_subject(self, subject_id: str) -> "SubjectSession":
        """The subject's rendering and encoding, bound to this pipeline's services."""
        return _LocalSubject(self, self.renderer.subject(subject_id))

    def speech(self, req: SpeakRequest) -> Iterator[tuple[Speech | AudioClip, float]]:
        """(speech, seconds it took) per sentence; TTS runs ahead in a thread."""
        if req.text is not None:
            return _prefetch(iter(self.tts.sentences(req.text, req.lang, req.voice)))
        assert req.audio is not None
        return iter([(req.audio, 0.0)])

    def enhance(self, clip: AudioClip) -> AudioClip:
        return self.denoiser.enhance(clip)

    # ---- the work -------------------------------------------------------------------------
    def stream(self, req: SpeakRequest, sink: Callable[[Chunk], None] | None = None,
               out_path: Path | None = None, cancelled: Callable[[], bool] | None = None,
               progress: Callable[[int, int], None] | None = None) -> SpeakResult:
        """Run one request. Fragmented-MP4 chunks go to `sink` as soon as they exist; with
        `out_path` a progressive mp4 is written there instead. Returns counts and stage times."""
        gen = self.generate(req, out_path=out_path, cancelled=cancelled, progress=progress)
        while True:
            try:
                chunk = next(gen)
            except StopIteration as stop:
                return stop.value
            if sink is not None:
                sink(chunk)

    def generate(self, req: SpeakRequest, out_path: Path | None = None,
                 cancelled: Callable[[], bool] | None = None,
                 progress: Callable[[int, int], None] | None = None) -> Generator[Chunk, None, SpeakResult]:
        """The generator form of `stream`: yields chunks, returns the SpeakResult (StopIteration.value).
        Closing it early stops the work at the next frame batch."""
        req.validate()
        t_start = time.perf_counter()
        times = StageTimes()
        subject = self.open_subject(req.subject)
        fps = subject.fps
        h, w = subject.size
        denoise = req.denoise if req.denoise is not None else req.audio is not None
        muxer: Mp4Muxer | None = None
        n_frames = 0
        n_chunks = 0
        sentences = 0
        pose_offset = int(np.random.default_rng(req.seed).integers(0, 10_000))

        def chunk(data: bytes, last: bool = False) -> Chunk | None:
            nonlocal n_chunks
            if out_path is not None or (not data and not last):
                return None
            if times.first_chunk is None and n_chunks >= 1:
                times.first_chunk = time.perf_counter() - t_start
            c = Chunk(data, n_chunks, n_frames, n_frames / fps, is_init=n_chunks == 0, is_last=last)
            n_chunks += 1
            return c

        for item, tts_s in self.speech(req):
            times.tts += tts_s
            clip = item.audio if isinstance(item, Speech) else item
            sentences += 1
            if cancelled is not None and cancelled():
                raise Cancelled("request cancelled")
            # Pad the sentence to whole frames so every sentence starts on a frame boundary.
            mux_rate = clip.sample_rate if clip.sample_rate in _AAC_FRIENDLY else 16_000
            padded, frames_here = pad_to_frames(AudioClip(resample(clip.samples, clip.sample_rate, mux_rate),
                                                          mux_rate), fps)
            samples = padded.samples
            analysis = to_analysis_rate(padded)
            if denoise:
                t0 = time.perf_counter()
                analysis = self.enhance(analysis)
                times.denoise += time.perf_counter() - t0
            t0 = time.perf_counter()
            codes = subject.encode(analysis, req.lang)
            times.encode += time.perf_counter() - t0
            if len(codes) != frames_here:
                raise InvalidInput(f"encoder gave {len(codes)} codes for {frames_here} frames")
            if muxer is None:
                spec = VideoSpec(width=w, height=h, fps=int(round(fps)), sample_rate=mux_rate)
                muxer = Mp4Muxer(spec, fragmented=out_path is None, path=out_path)
            elif muxer.spec.sample_rate != mux_rate:
                samples = resample(samples, mux_rate, muxer.spec.sample_rate)
                mux_rate = muxer.spec.sample_rate
            start = 0
            t0 = time.perf_counter()
            batches = subject.render(codes, req.static_pose, seed=req.seed + sentences,
                                     start=pose_offset + n_frames, batch=req.frames_per_chunk)
            try:
                for batch in batches:
                    t1 = time.perf_counter()
                    times.render += t1 - t0
                    if cancelled is not None and cancelled():
                        raise Cancelled("request cancelled")
                    end = start + len(batch)
                    a0, a1 = int(round(start * mux_rate / fps)), int(round(end * mux_rate / fps))
                    data = muxer.add(batch, samples[a0:a1])
                    n_frames += len(batch)
                    start = end
                    times.mux += time.perf_counter() - t1
                    c = chunk(data)
                    if c is not None:
                        yield c
                    if progress is not None:
                        progress(len(batch), n_frames)
                    t0 = time.perf_counter()
            finally:
                close = getattr(batches, "close", None)
                if close is not None:  # stops a remote renderer when we stop early
                    close()
        if muxer is None:
            raise InvalidInput("nothing to say")
        t1 = time.perf_counter()
        tail = muxer.finish()
        times.mux += time.perf_counter() - t1
        c = chunk(tail, last=True)
        if c is not None:
            yield c
        return SpeakResult(frames=n_frames, seconds=n_frames / fps, fps=fps, times=times, sentences=sentences,
                           extra={"subject": subject.id, "size": [h, w]})


class SubjectSession(Protocol):
    """What the pipeline needs of a subject: its rates and size, encoding and rendering."""

    id: str
    fps: float

    @property
    def size(self) -> tuple[int, int]: ...

    def encode(self, clip16k: AudioClip, lang: str) -> np.ndarray: ...

    def render(self, codes: np.ndarray, static_pose: bool, seed: int, start: int, batch: int
               ) -> Iterator[np.ndarray]: ...


class _LocalSubject:
    """A subject served by this process's own RendererService and EncoderService."""

    def __init__(self, pipeline: Pipeline, renderer: Any) -> None:
        self._pipeline, self._r = pipeline, renderer
        self.id, self.fps = renderer.id, renderer.fps
        self._head = pipeline._head(renderer)
        if self._head.config.uses_content:  # load the content model while TTS speaks (seconds on a laptop)
            pipeline.encoder.load_content_in_background()

    @property
    def size(self) -> tuple[int, int]:
        return self._r.size

    def encode(self, clip16k: AudioClip, lang: str) -> np.ndarray:
        return self._pipeline.encoder.encode(clip16k, self._head, self.fps, lang=lang).codes

    def render(self, codes: np.ndarray, static_pose: bool, seed: int, start: int, batch: int
               ) -> Iterator[np.ndarray]:
        poses, blinks = self._r.conditions(len(codes), static_pose, seed=seed, start=start)
        return self._r.render(codes, poses, blinks, batch=batch, fps=self.fps)
