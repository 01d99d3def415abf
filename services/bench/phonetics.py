"""A transcript's target units without audio: the TTS front end's phonemisation of the text,
in the content model's unit spelling (services/encoder/units.py).

English: the espeak IPA symbols Piper speaks for the normalised text, with stress and
length marks, word gaps and punctuation removed exactly as TTS timings remove them, so the
labels equal `speech_labels` of the same sentence synthesised. Mandarin: the pinyin
initials and finals of the front end's syllables. Used to score real recordings, which have
a transcript but no TTS timings.
"""

from __future__ import annotations

from collections.abc import Sequence

from services.common.pinyin_phones import PinyinSyllable
from services.encoder.units import SILENCE_LABELS, syllable_units
from services.tts.normalize import normalize
from services.tts.pinyin_phonemes import text_to_syllables
from services.tts.service import TtsService
from services.tts.text import split_sentences
from services.tts.timings import symbols_to_timings


def symbol_labels(symbols: Sequence[str]) -> list[str]:
    """Phoneme symbols → the units TTS timings would label them with (silences left out)."""
    timings = symbols_to_timings(symbols, [1] * len(symbols), 1)
    return [t.phoneme for t in timings if t.phoneme not in SILENCE_LABELS]


def transcript_labels(tts: TtsService, text: str, lang: str) -> list[str]:
    """Target unit sequence of `text` as the TTS would say it (normalised, sentence by sentence)."""
    spoken = split_sentences(normalize(text, lang))
    if lang == "zh":
        return [unit for sentence in spoken for s in text_to_syllables(sentence)
                if isinstance(s, PinyinSyllable) for unit in syllable_units(s.pinyin, tones=False)]
    backend = tts.backend(lang)
    return [unit for sentence in spoken for unit in symbol_labels(backend.phonemize(sentence, lang))]
