"""Text normalisation before TTS: prices, numbers, dates, times, phone numbers, e-mail
addresses, URLs, codes, units and abbreviations become the words a person would say, and
emoji and other pictographs are dropped (sentence punctuation stays).

Pure functions, deterministic, patterns compiled once. Runs before sentence splitting,
so the periods inside "$3.50", "Dr." and "a.m." are gone before they can end a sentence.
House styles: `english` and `mandarin` module docstrings.
"""

from __future__ import annotations

from services.common.errors import InvalidInput
from services.tts.normalize.english import normalize_en
from services.tts.normalize.mandarin import normalize_zh
from services.tts.normalize.patterns import drop_pictographs, drop_symbols, tidy


def normalize(text: str, lang: str, yao: bool = False) -> str:
    """The spoken form of `text` in `lang` ("en" or "zh"). `yao`: Mandarin phone numbers and
    codes say 1 as 幺 (as on the phone) instead of 一."""
    text = drop_pictographs(text)
    if lang == "en":
        text = normalize_en(text)
    elif lang == "zh":
        text = normalize_zh(text, yao=yao)
    else:
        raise InvalidInput(f"no text normalisation for {lang!r}")
    return tidy(drop_symbols(text))


__all__ = ["normalize", "normalize_en", "normalize_zh"]
