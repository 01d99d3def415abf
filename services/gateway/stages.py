"""The four stages the pipeline calls, behind one interface, and their in-process form.

`Stages` is what the pipeline needs: sentences of speech, enhancement, and a subject's
encoding and rendering. `LocalStages` answers with this process's own service objects;
the Ray app (services.gateway.app) answers the same calls with deployment handles, so both
run the one `Pipeline`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from services.common.types import AudioClip, Speech, render_batches
from services.gateway.subjects import BundleSource, OpenSubject, SubjectCache


@dataclass(frozen=True)
class SubjectInfo:
    """A subject ready for one request: its rates and size; `opened` in-process only."""

    id: str
    fps: float
    size: tuple[int, int]  # (height, width)
    digest: str
    opened: OpenSubject | None = None
    pose_frames: int = 0  # frames of its pose track (a request's pose_start is a phase of it); 0: unknown


class Stages(Protocol):
    def sentences(self, text: str, lang: str, voice: str | None) -> Iterator[Speech]:
        """One Speech per sentence, made as the iterator is read; bad text raises on the call."""
        ...

    def enhance(self, clip16k: AudioClip) -> AudioClip: ...

    def subject(self, subject_id: str) -> SubjectInfo:
        """Load (or find) a subject; NotFound for an unknown one."""
        ...

    def encode(self, subject: SubjectInfo, clip16k: AudioClip, lang: str) -> np.ndarray:
        """Audio codes [n_frames, D], one per video frame of the clip."""
        ...

    def render(self, subject: SubjectInfo, codes: np.ndarray, static_pose: bool, seed: int, start: int,
               frames_per_batch: int, exact: bool = False, first_batch: int = 0,
               pose_span: int = 0) -> Iterator[np.ndarray]:
        """uint8 [b, H, W, 3] frame batches; closing the iterator stops the render. `start`:
        the pose phase of the first frame; `exact`: every ray of every frame (no fast render
        path); `first_batch` > 0: the first frames in a smaller batch of their own
        (services.common.types.render_batches); `pose_span` > 0: poses from the first
        frames of the track only."""
        ...


class LocalStages:
    """The stages as this process's service objects, each built from its defaults on first use."""

    def __init__(self, tts: Any = None, encoder: Any = None, denoiser: Any = None,
                 subjects: BundleSource | None = None, device: str | None = None, cache_size: int = 4) -> None:
        self._tts, self._encoder, self._denoiser = tts, encoder, denoiser
        self._source, self._device, self._cache_size = subjects, device, cache_size
        self._cache: SubjectCache | None = None

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
    def denoiser(self) -> Any:
        if self._denoiser is None:
            from services.denoise.service import DenoiseService

            self._denoiser = DenoiseService()
        return self._denoiser

    @property
    def subjects(self) -> SubjectCache:
        if self._cache is None:
            source = self._source
            if source is None:
                from services.common.subject_store import LocalSubjectStore

                source = LocalSubjectStore()
            self._cache = SubjectCache(source, self._device, self._cache_size)
        return self._cache

    def open(self, subject_id: str) -> OpenSubject:
        """The subject's audio encoder and renderer (cached)."""
        return self.subjects.get(subject_id)

    # ---- Stages ------------------------------------------------------------------------------
    def sentences(self, text: str, lang: str, voice: str | None) -> Iterator[Speech]:
        return iter(self.tts.sentences(text, lang, voice))

    def enhance(self, clip16k: AudioClip) -> AudioClip:
        return self.denoiser.enhance(clip16k)

    def subject(self, subject_id: str) -> SubjectInfo:
        s = self.open(subject_id)
        if s.audio_encoder.config.uses_content:  # load the content model while TTS speaks (seconds on a laptop)
            self.encoder.load_content_in_background()
        return SubjectInfo(s.id, s.renderer.fps, s.renderer.size, s.digest, opened=s,
                           pose_frames=s.renderer.pose_frames)

    def _opened(self, subject: SubjectInfo) -> OpenSubject:
        return subject.opened if subject.opened is not None else self.open(subject.id)

    def encode(self, subject: SubjectInfo, clip16k: AudioClip, lang: str) -> np.ndarray:
        return self.encoder.encode(clip16k, self._opened(subject).audio_encoder, subject.fps, lang=lang).codes

    def render(self, subject: SubjectInfo, codes: np.ndarray, static_pose: bool, seed: int, start: int,
               frames_per_batch: int, exact: bool = False, first_batch: int = 0,
               pose_span: int = 0) -> Iterator[np.ndarray]:
        r = self._opened(subject).renderer
        poses, blinks = r.conditions(len(codes), static_pose, seed=seed, start=start, span=pose_span)
        return render_batches(r, codes, poses, blinks, frames_per_batch, first_batch, fps=subject.fps, exact=exact)
