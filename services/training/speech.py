"""The speech that synthetic training data is made from: the bundled TTS voice."""

from __future__ import annotations

from functools import lru_cache

from services.common.types import SpeechSource


@lru_cache(maxsize=1)
def bundled_voice() -> SpeechSource:
    """The bundled TTS voice as a speech source, loaded once per process."""
    from services.tts.service import TtsService

    return TtsService().synthesize
