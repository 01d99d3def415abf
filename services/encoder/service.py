"""EncoderService: audio → one 64-d code per video frame.

The content model (the heavy, shared extractor) loads once per process, lazily, and is
shared by every subject. Subject fusion heads (AudioEncoder modules: dynamic conv path,
fusion, FCResBlocks, temporal attention) are trained with each subject and arrive from
its bundle, as a module or as (config dict, state dict); the service never owns them.
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
from services.common.errors import InvalidInput
from services.common.types import VIDEO_FPS, AudioClip
from services.encoder.content import DEFAULT_CONTENT_MODEL, ContentModel
from services.encoder.features import AudioFeatures, extract_features
from services.encoder.model import AudioEncoder, EncoderConfig, build_encoder

LANGS = ("en", "zh")


@dataclass(frozen=True)
class EncodedAudio:
    """Codes for one clip, with the rate they were made for."""

    codes: np.ndarray  # [n_frames, 64] float32
    fps: float
    n_frames: int
    duration: float


def load_head(config: Mapping[str, Any], state: Mapping[str, torch.Tensor] | None = None,
              prefix: str = "") -> AudioEncoder:
    """Rebuild a subject's encoder head from its manifest config and (prefixed) tensors."""
    head = build_encoder(dict(config))
    if state is not None:
        own = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
        try:
            head.load_state_dict(own, strict=True)
        except RuntimeError as exc:  # missing / unexpected keys or wrong shapes
            first = str(exc).strip().splitlines()[1:2] or [str(exc)[:200]]
            raise InvalidInput(f"encoder head weights do not match its config: {first[0].strip()}") from exc
    return head.eval()


def random_head(variant: str = "csfm", content_dim: int = 0, seed: int = 0) -> AudioEncoder:
    """An untrained head (seeded): codes with the right shapes and timing but no learned meaning."""
    torch.manual_seed(seed)
    return build_encoder(EncoderConfig(variant=variant, content_dim=content_dim)).eval()


class EncoderService:
    """Thread-safe: the content model is read-only after loading; heads run under no_grad."""

    def __init__(self, content_model: str | Path | None = DEFAULT_CONTENT_MODEL) -> None:
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
        """Start loading the content model on a daemon thread; no-op once it is loaded.
        A load error is left for the first `content_model` use to raise where it is reported."""
        if self._content is not None or self._content_path is None:
            return

        def load() -> None:
            try:
                self.content_model
            except Exception:  # noqa: BLE001 - re-raised by the caller's own load
                pass

        threading.Thread(target=load, daemon=True, name="content-model-load").start()

    @property
    def content_dim(self) -> int:
        return self.content_model.dim

    def features(self, clip: AudioClip, fps: float = VIDEO_FPS, lang: str | None = None,
                 content: bool = True, space: str = "units") -> AudioFeatures:
        """Per-frame windows of a clip at any sample rate (resampled to 16 kHz here)."""
        if lang is not None and lang not in LANGS:
            raise InvalidInput(f"unknown language {lang!r}; use one of {', '.join(LANGS)}")
        clip16 = to_analysis_rate(clip)
        frames = self.content_model.frames(clip16, lang, space) if content else None
        return extract_features(clip16, fps, content=frames)

    @torch.no_grad()
    def encode(self, clip: AudioClip, head: AudioEncoder, fps: float = VIDEO_FPS,
               lang: str | None = None) -> EncodedAudio:
        """One clip → codes [round(fps·duration), 64]."""
        head.eval()
        space = head.config.content_space
        if head.config.uses_content and head.config.content_dim != self.content_model.dim_for(space):
            raise InvalidInput(f"the subject's encoder expects {head.config.content_dim}-d content features, "
                               f"the loaded content model gives {self.content_model.dim_for(space)} ({space})")
        feats = self.features(clip, fps, lang, content=head.config.uses_content, space=space)
        codes = head(feats).float().numpy()
        return EncodedAudio(codes, fps, feats.n_frames, clip.duration)

    def encode_batch(self, clips: Sequence[AudioClip], head: AudioEncoder, fps: float = VIDEO_FPS,
                     lang: str | None = None) -> list[EncodedAudio]:
        """Several clips with the same head (codes never leak across clips)."""
        return [self.encode(c, head, fps, lang) for c in clips]
