"""The interface every TTS backend implements."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from services.common.types import Speech


@dataclass(frozen=True)
class SynthesisOptions:
    """Per-request knobs; None keeps the voice's own default."""

    length_scale: float | None = None  # > 1 speaks slower
    noise_scale: float | None = None   # generator noise (prosody variation)
    noise_w_scale: float | None = None  # phoneme-duration noise


class TtsBackend(Protocol):
    """Synthesises one sentence at a time so callers can pipeline sentences."""

    name: str
    languages: tuple[str, ...]
    sample_rate: int

    def synthesize_sentence(self, sentence: str, lang: str, options: SynthesisOptions) -> Speech:
        """Audio at `sample_rate` plus phoneme timings that tile it exactly."""
        ...
