"""Mandarin front end: hanzi → pinyin syllables (pypinyin, context-aware) spelled with the
voice's phonemes (`services.common.pinyin_phones`), plus pause marks."""

from __future__ import annotations

from pypinyin import Style, lazy_pinyin

from services.common.pinyin_phones import PinyinSyllable, syllable_phonemes

_PUNCT_PAUSE = {"，": ",", "、": ",", "；": ";", "：": ":", "。": ".", "！": "!", "？": "?",
                ",": ",", ";": ";", ":": ":", ".": ".", "!": "!", "?": "?"}


_DIGITS = str.maketrans("0123456789", "零一二三四五六七八九")


def text_to_syllables(text: str) -> list[PinyinSyllable | str]:
    """Hanzi text → pinyin syllables (phrase-aware for polyphones) and pause marks.

    Punctuation becomes a pause mark; digits are read digit by digit (一二三); latin
    words are skipped, since the Mandarin voice has no English reading.
    """
    text = text.translate(_DIGITS)
    tokens = lazy_pinyin(text, style=Style.TONE3, neutral_tone_with_five=True,
                         errors=lambda chunk: list(chunk))
    out: list[PinyinSyllable | str] = []
    for tok in tokens:
        tok = tok.strip()
        if not tok:
            continue
        if tok in _PUNCT_PAUSE:
            out.append(_PUNCT_PAUSE[tok])
            continue
        syl = syllable_phonemes(tok.lower()) if tok.isascii() and tok[:1].isalpha() else None
        if syl is not None and tok[-1:].isdigit():
            out.append(syl)
    return out
