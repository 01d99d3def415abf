"""Plain data types that stages exchange (the in-process twin of the protos)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from services.common.errors import InvalidInput, RateMismatch

#: Analysis audio rate for denoising and encoding (DESIGN.md §1).
ANALYSIS_SAMPLE_RATE = 16_000
#: Wav2Lip mel frames per second (hop 200 at 16 kHz).
MEL_FPS = 80
#: Content posteriors per second.
CONTENT_FPS = 50
#: Default video frame rate.
VIDEO_FPS = 25


@dataclass(frozen=True)
class AudioClip:
    """Mono float32 audio in [-1, 1] at a known sample rate."""

    samples: np.ndarray
    sample_rate: int

    def __post_init__(self) -> None:
        if self.samples.ndim != 1:
            raise InvalidInput(f"audio must be mono 1-D, got shape {self.samples.shape}")
        if self.sample_rate <= 0:
            raise InvalidInput(f"sample rate must be positive, got {self.sample_rate}")

    @property
    def duration(self) -> float:
        return len(self.samples) / self.sample_rate

    def require_rate(self, sample_rate: int, stage: str) -> None:
        if self.sample_rate != sample_rate:
            raise RateMismatch(f"{stage} needs {sample_rate} Hz audio, got {self.sample_rate} Hz")


@dataclass(frozen=True)
class PhonemeTiming:
    """One phoneme (or pause) and where it sits in the audio, in seconds."""

    phoneme: str
    start: float
    end: float


@dataclass(frozen=True)
class Speech:
    """What a TTS backend returns: audio plus phoneme timings covering it end to end."""

    audio: AudioClip
    phonemes: list[PhonemeTiming]
    text: str
    lang: str
    voice: str
    #: Sentence index within the request (for sentence-level pipelining).
    sentence: int = 0
    #: Optional coarser units (e.g. pinyin syllables) with the same timing contract.
    syllables: list[PhonemeTiming] = field(default_factory=list)


@dataclass(frozen=True)
class SynthesisOptions:
    """Per-request TTS knobs; None keeps the voice's own default."""

    length_scale: float | None = None  # > 1 speaks slower
    noise_scale: float | None = None   # generator noise (prosody variation)
    noise_w_scale: float | None = None  # phoneme-duration noise


class SpeechSource(Protocol):
    """Speaks text in a language: what offline data makers are handed instead of importing
    the TTS service (whose `TtsService.synthesize` is one)."""

    def __call__(self, text: str, lang: str, *, options: SynthesisOptions | None = None) -> Speech: ...


def join_speech(parts: list[Speech]) -> Speech:
    """Concatenate speeches of one sample rate end to end, shifting every timing so they
    stay contiguous. The result's lang is the parts' common language, or "mixed"."""
    if not parts:
        raise InvalidInput("nothing to join")
    rate = parts[0].audio.sample_rate
    phonemes: list[PhonemeTiming] = []
    syllables: list[PhonemeTiming] = []
    offset = 0.0
    for p in parts:
        p.audio.require_rate(rate, "join_speech")
        phonemes += [PhonemeTiming(t.phoneme, t.start + offset, t.end + offset) for t in p.phonemes]
        syllables += [PhonemeTiming(t.phoneme, t.start + offset, t.end + offset) for t in p.syllables]
        offset += p.audio.duration
    langs = {p.lang for p in parts}
    audio = np.concatenate([p.audio.samples for p in parts])
    return Speech(AudioClip(audio, rate), phonemes, " ".join(p.text for p in parts),
                  langs.pop() if len(langs) == 1 else "mixed", parts[0].voice, sentence=0, syllables=syllables)


def walk_start(seed: int) -> int:
    """The phase a request's pose walk starts at when it names none (its seed picks it)."""
    return int(np.random.default_rng(seed).integers(0, 10_000))


def track_position(phase: np.ndarray | int, n: int) -> np.ndarray | int:
    """Frame of an n-frame track at `phase` of its ping-pong walk (period 2(n-1)): phase k ≥ 0
    walks forwards from frame k, -k walks backwards from frame k."""
    if n <= 1:
        return phase * 0
    period = 2 * (n - 1)
    k = np.mod(phase, period)
    return np.where(k < n, k, period - k) if isinstance(k, np.ndarray) else int(k if k < n else period - k)


class FrameRenderer(Protocol):
    """What every renderer kind gives the pipeline for one loaded subject."""

    id: str
    digest: str  # sha256 of the bundle's manifest: the exact version being rendered
    manifest: dict[str, Any]
    fps: float

    @property
    def size(self) -> tuple[int, int]:
        """(height, width) of the frames."""
        ...

    @property
    def pose_frames(self) -> int:
        """Frames of the pose track whose phases `conditions(start=...)` walks (`track_position`)."""
        ...

    def conditions(self, n_frames: int, static_pose: bool = False, seed: int = 0, start: int | None = None,
                   span: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """Head poses [n, 4, 4] and eye-blink values [n] for n frames of speech: from phase
        `start` of the pose track's walk (`track_position`), of its first `span` frames (0: all)."""
        ...

    def render(self, codes: np.ndarray, poses: np.ndarray, blinks: np.ndarray, frames_per_batch: int = 8,
               fps: float | None = None, exact: bool = False) -> Iterator[np.ndarray]:
        """uint8 [b, H, W, 3] frame batches, in order, for audio codes [N, D]; `exact`: no
        shortcuts (a kind with a fast path renders every ray)."""
        ...


def render_batches(renderer: FrameRenderer, codes: np.ndarray, poses: np.ndarray, blinks: np.ndarray,
                   frames_per_batch: int = 8, first_batch: int = 0, fps: float | None = None,
                   exact: bool = False) -> Iterator[np.ndarray]:
    """`renderer.render`'s batches, the first `first_batch` frames (when fewer than a batch)
    as a batch of their own: the first frames of a stream exist sooner. Every frame is the
    same as without the split."""
    k = first_batch if 0 < first_batch < min(frames_per_batch, len(codes)) else 0
    if k:
        yield from renderer.render(codes[:k], poses[:k], blinks[:k], frames_per_batch=k, fps=fps, exact=exact)
    yield from renderer.render(codes[k:], poses[k:], blinks[k:], frames_per_batch=frames_per_batch, fps=fps,
                               exact=exact)
