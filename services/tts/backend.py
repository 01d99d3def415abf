"""The interface every TTS backend implements."""

from __future__ import annotations

from typing import Protocol

from services.common.types import Speech, SynthesisOptions


class TtsBackend(Protocol):
    """Synthesises one sentence at a time so callers can pipeline sentences."""

    name: str
    languages: tuple[str, ...]
    sample_rate: int

    def synthesize_sentence(self, sentence: str, lang: str, options: SynthesisOptions) -> Speech:
        """Audio at `sample_rate` plus phoneme timings that tile it exactly."""
        ...

    def phonemize(self, sentence: str, lang: str) -> list[str]:
        """The phoneme symbols `synthesize_sentence` would speak, without audio."""
        ...
