"""EncoderService: audio → one 64-d code per video frame.

The content model (the heavy, shared extractor) loads once per process, lazily, and is
shared by every subject. A subject's own audio encoder (an AudioEncoder module: dynamic
conv path, fusion, FCResBlocks, temporal attention) is trained with the subject and arrives
from its bundle; the service never owns it.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from services.common.audio import to_analysis_rate
from services.common.bundle import AUDIO_ENCODER_PREFIX, SubjectBundle
from services.common.errors import IntegrityError, InvalidInput
from services.common.text import check_language
from services.common.threads import intra_op_threads
from services.common.types import ANALYSIS_SAMPLE_RATE, VIDEO_FPS, AudioClip
from services.encoder.content import DEFAULT_CONTENT_MODEL, ContentModel
from services.encoder.features import AudioFeatures, extract_features
from services.encoder.model import AudioEncoder, EncoderConfig, build_encoder

@dataclass(frozen=True)
class EncodedAudio:
    """Codes for one clip, with the rate they were made for."""

    codes: np.ndarray  # [n_frames, 64] float32
    fps: float
    n_frames: int
    duration: float


def load_audio_encoder(config: Mapping[str, Any], state: Mapping[str, torch.Tensor] | None = None
                       ) -> AudioEncoder:
    """Rebuild a subject's audio encoder from its manifest config and state dict."""
    model = build_encoder(dict(config))
    if state is not None:
        try:
            model.load_state_dict(dict(state), strict=True)
        except RuntimeError as exc:  # missing / unexpected keys or wrong shapes
            first = str(exc).strip().splitlines()[1:2] or [str(exc)[:200]]
            raise InvalidInput(f"audio encoder weights do not match its config: {first[0].strip()}") from exc
    return model.eval()


def subject_audio_encoder(bundle: SubjectBundle) -> AudioEncoder:
    """The audio encoder trained with a subject, from its (verified) bundle."""
    try:
        config = bundle.manifest["audio_encoder"]["config"]
    except (KeyError, TypeError) as exc:
        raise IntegrityError(f"subject {bundle.id!r}: manifest has no audio_encoder config") from exc
    return load_audio_encoder(config, bundle.tensors("model.safetensors", prefix=AUDIO_ENCODER_PREFIX))


def random_audio_encoder(variant: str = "csfm", content_dim: int = 0, seed: int = 0) -> AudioEncoder:
    """An untrained audio encoder (seeded): codes with the right shapes and timing but no learned meaning."""
    torch.manual_seed(seed)
    return build_encoder(EncoderConfig(variant=variant, content_dim=content_dim)).eval()


#: Intra-op threads of one encode. The encoder's ops are small (a sentence is ~100 frames):
#: a second thread gains little on idle cores and, when another job holds a core, makes
#: every op wait at its barrier (measured 10-50x slower at load 2.5 on 2 cores).
ENCODE_THREADS = 1
#: Seconds of silence the content model runs once after loading (first-call set-up).
_WARM_UP_SECONDS = 0.5


class EncoderService:
    """Thread-safe: the content model is read-only after loading; subject encoders run under no_grad.

    `threads`: intra-op threads of each encode (None: the calling thread's own count)."""

    def __init__(self, content_model: str | Path | None = DEFAULT_CONTENT_MODEL,
                 threads: int | None = ENCODE_THREADS) -> None:
        self.threads = threads
        self._content_path = Path(content_model) if content_model else None
        self._content: ContentModel | None = None
        self._lock = threading.Lock()

    @property
    def content_model(self) -> ContentModel:
        with self._lock:
            if self._content is None:
                if self._content_path is None:
                    raise InvalidInput("this encoder service was started without a content model")
                self._content = ContentModel.load(self._content_path)
            return self._content

    def load_content_in_background(self) -> None:
        """Start loading the content model on a thread of its own; no-op once it is loaded.
        A load error is left for the first `content_model` use to raise where it is reported."""
        if self._content is not None or self._content_path is None:
            return

        def load() -> None:
            try:
                model = self.content_model
                with intra_op_threads(self.threads):
                    model.logits(AudioClip(np.zeros(int(_WARM_UP_SECONDS * ANALYSIS_SAMPLE_RATE), np.float32),
                                           ANALYSIS_SAMPLE_RATE))
            except Exception:  # noqa: BLE001 - re-raised by the caller's own load
                pass

        # Not a daemon: a process exiting meanwhile waits for the warm-up (≤ 0.1 s) to leave
        # torch; killing a thread inside it aborts the process ("terminate called ...").
        threading.Thread(target=load, name="content-model-load").start()

    @property
    def content_dim(self) -> int:
        return self.content_model.dim

    def features(self, clip: AudioClip, fps: float = VIDEO_FPS, lang: str | None = None,
                 content: bool = True, space: str = "units") -> AudioFeatures:
        """Per-frame windows of a clip at any sample rate (resampled to 16 kHz here)."""
        if lang is not None:
            check_language(lang)
        clip16 = to_analysis_rate(clip)
        frames = self.content_model.frames(clip16, lang, space) if content else None
        return extract_features(clip16, fps, content=frames)

    def check_content(self, audio_encoder: AudioEncoder) -> None:
        """InvalidInput unless the loaded content model feeds this audio encoder (no-op for
        encoders without a content path)."""
        cfg = audio_encoder.config
        space = cfg.content_space
        if cfg.uses_content and cfg.content_dim != self.content_model.dim_for(space):
            raise InvalidInput(f"the subject's audio encoder expects {cfg.content_dim}-d content features, "
                               f"the loaded content model gives {self.content_model.dim_for(space)} ({space})")

    @torch.no_grad()
    def encode(self, clip: AudioClip, audio_encoder: AudioEncoder, fps: float = VIDEO_FPS,
               lang: str | None = None) -> EncodedAudio:
        """One clip → codes [round(fps·duration), 64]."""
        audio_encoder.eval()
        cfg = audio_encoder.config
        self.check_content(audio_encoder)
        with intra_op_threads(self.threads):
            feats = self.features(clip, fps, lang, content=cfg.uses_content, space=cfg.content_space)
            codes = audio_encoder(feats).float().numpy()
        return EncodedAudio(codes, fps, feats.n_frames, clip.duration)

    def encode_batch(self, clips: Sequence[AudioClip], audio_encoder: AudioEncoder, fps: float = VIDEO_FPS,
                     lang: str | None = None) -> list[EncodedAudio]:
        """Several clips with the same audio encoder (codes never leak across clips)."""
        return [self.encode(c, audio_encoder, fps, lang) for c in clips]
