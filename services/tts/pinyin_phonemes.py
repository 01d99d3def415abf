"""Mandarin front end: hanzi → pinyin syllables (pypinyin, context-aware) spelled with the
voice's phonemes (`services.common.pinyin_phones`), plus pause marks."""

from __future__ import annotations

import re

from services.common.pinyin_phones import PinyinSyllable, syllable_phonemes

_PUNCT_PAUSE = {"，": ",", "、": ",", "；": ";", "：": ":", "。": ".", "！": "!", "？": "?",
                ",": ",", ";": ";", ":": ":", ".": ".", "!": "!", "?": "?"}

# Digits the normaliser left (none, when text comes through TtsService) are read one by one;
# a digit right after a Latin letter is a pinyin tone ("hao3") and stays.
_DIGITS = str.maketrans("0123456789", "零一二三四五六七八九")
_LOOSE_DIGITS = re.compile(r"(?<![A-Za-z])\d+")
# Latin letters as Mandarin speakers name them (codes such as "A12", "GB"), in pinyin.
_LETTERS = {
    "A": "ei1", "B": "bi4", "C": "xi1", "D": "di4", "E": "yi4", "F": "ai2 fu5", "G": "ji4",
    "H": "ai2 qi1", "I": "ai4", "J": "jie4", "K": "kai4", "L": "ai2 le5", "M": "ai2 mu5", "N": "en1",
    "O": "ou1", "P": "pi4", "Q": "qiu1", "R": "a4", "S": "ai2 si1", "T": "ti4", "U": "you1",
    "V": "wei1", "W": "da2 bu5 liu5", "X": "ai2 ke4 si1", "Y": "wai4", "Z": "zei4",
}
#: Capital runs up to this long are spelled letter by letter ("VIP", "GB"); longer ones are words.
_MAX_SPELLED = 5
_LATIN_TOKEN = re.compile(r"[A-Za-z]+[0-5]?|\S")


def _non_hanzi(chunk: str) -> list[str]:
    """A run pypinyin could not read: Latin words (pinyin with a tone digit among them), digits
    and punctuation, one token each; capital runs become their letter names."""
    out: list[str] = []
    for tok in _LATIN_TOKEN.findall(chunk):
        if tok.isascii() and tok.isalpha() and tok.isupper() and len(tok) <= _MAX_SPELLED:
            out += [syl for letter in tok for syl in _LETTERS[letter].split()]
        else:
            out.append(tok)
    return out


def text_to_syllables(text: str) -> list[PinyinSyllable | str]:
    """Hanzi text → pinyin syllables (phrase-aware for polyphones) and pause marks.

    Punctuation becomes a pause mark; pinyin written with tone digits ("ni3 hao3") is read
    as written; capital Latin letters are read by their names (A ei1, B bi4); other Latin
    words are skipped, since the Mandarin voice has no English reading.
    """
    # Imported here: pypinyin loads in ~0.3 s, English needs none of it
    from pypinyin import Style, lazy_pinyin

    text = _LOOSE_DIGITS.sub(lambda m: m.group().translate(_DIGITS), text)
    tokens = lazy_pinyin(text, style=Style.TONE3, neutral_tone_with_five=True, errors=_non_hanzi)
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
