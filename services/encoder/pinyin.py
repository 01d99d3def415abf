"""Pinyin vocabulary reduction: character-level Mandarin CTC posteriors → pinyin units.

Every hanzi token is mapped to its readings (pypinyin, all of them for polyphones); each
reading is one initial (or the zero initial "∅-"), one final and one tone. A token's
probability is split over its readings by a reading prior, and each reading's share is
split equally over its three units, so the reduction is a row-stochastic matrix
M [V, U]: reduced = posteriors @ M still sums to 1 per frame, and 3 × the hanzi part is
the marginal distribution over initials, finals and tones.

Non-hanzi tokens are explicit: the CTC blank/pad → "<blank>", word delimiters and
punctuation → "<space>", latin letters/words → "<latin>", digits → "<digit>",
everything else (bos/eos/unk, symbols) → "<unk>".

Polyphone prior: how often pypinyin's phrase dictionary (47 k phrases) reads the
character each way, plus a small rank bonus for pypinyin's preferred reading — so 行
leans to xing2 but keeps hang2, 长 splits between zhang3 and chang2, and so on.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Sequence
from functools import lru_cache

import numpy as np

from services.encoder.units import (BLANK, DIGIT, LATIN, SPACE, UNK, pinyin_units, split_syllable,
                                    syllable_units)

ZERO_INITIAL = "∅-"
SPECIAL_UNITS = (BLANK, SPACE, LATIN, DIGIT, UNK)
_BLANK_TOKENS = {"<pad>", "[pad]", "<blank>", "<b>", "<eps>", "<ctc_blank>", "_"}
_SPACE_TOKENS = {"|", " ", "<space>", "▁", "<sil>", "sil"}
_HANZI = re.compile(r"^[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]$")


def reduced_units() -> list[str]:
    """The fixed unit list: specials, 21 initials + zero initial, 40 finals, 5 tones (72)."""
    units = list(SPECIAL_UNITS) + pinyin_units(tones=True)
    units.insert(len(SPECIAL_UNITS) + 21, ZERO_INITIAL)
    return units


def is_hanzi(token: str) -> bool:
    return bool(_HANZI.match(token))


def is_character_vocab(vocab: Sequence[str], min_hanzi: int = 50) -> bool:
    """A CTC vocabulary of single hanzi (Mandarin character model) rather than phones."""
    return sum(1 for t in vocab if is_hanzi(t)) >= min_hanzi


def common_hanzi() -> list[str]:
    """GB 2312 level-1 hanzi: the 3 755 common characters (pypinyin 0.55 ships no such list)."""
    out = []
    for hi in range(0xB0, 0xD8):
        for lo in range(0xA1, 0xFF):
            if hi == 0xD7 and lo > 0xF9:
                break
            out.append(bytes([hi, lo]).decode("gb2312"))
    return out


@lru_cache(maxsize=1)
def _phrase_reading_counts() -> dict[str, Counter]:
    """char → Counter(TONE3 reading → number of dictionary phrases reading it that way)."""
    from pypinyin.contrib.tone_convert import to_tone3
    from pypinyin.phrases_dict import phrases_dict

    counts: dict[str, Counter] = {}
    for phrase, readings in phrases_dict.items():
        if len(phrase) != len(readings):
            continue
        for ch, rd in zip(phrase, readings):
            counts.setdefault(ch, Counter())[to_tone3(rd[0], neutral_tone_with_five=True)] += 1
    return counts


def char_readings(ch: str) -> list[tuple[str, float]]:
    """All TONE3 readings of one hanzi with prior weights summing to 1."""
    # Imported here: pypinyin loads in ~0.3 s, English needs none of it
    from pypinyin import Style, pinyin

    readings = pinyin(ch, style=Style.TONE3, heteronym=True, neutral_tone_with_five=True)[0]
    readings = [r for r in dict.fromkeys(readings) if r[:1].isalpha() and r.isascii()]
    if not readings:
        return []
    counts = _phrase_reading_counts().get(ch, Counter())
    raw = [counts.get(r, 0) + 1.0 / (rank + 1) for rank, r in enumerate(readings)]
    total = sum(raw)
    return [(r, w / total) for r, w in zip(readings, raw)]


def reading_units(tone3: str) -> list[str]:
    """Exactly three units per reading: initial (or ∅-), final, tone."""
    initial, _, _ = split_syllable(tone3)
    units = syllable_units(tone3, tones=True)
    return units if initial else [ZERO_INITIAL] + units


def _token_class(token: str, index: int, blank_id: int) -> str | None:
    """The special unit of a non-hanzi token, or None for a hanzi."""
    if index == blank_id or token.lower() in _BLANK_TOKENS:
        return BLANK
    if is_hanzi(token):
        return None
    if token in _SPACE_TOKENS or (token and all(unicodedata.category(c)[0] in "PZ" for c in token)):
        return SPACE
    if token.isdigit():
        return DIGIT
    if token.isascii() and token.replace("'", "").isalpha():
        return LATIN
    return UNK


class PinyinReducer:
    """Reduces posteriors over a character vocabulary to ≤ 100 pinyin units."""

    def __init__(self, vocab: Sequence[str], blank_id: int = 0) -> None:
        self.units = reduced_units()
        index = {u: i for i, u in enumerate(self.units)}
        matrix = np.zeros((len(vocab), len(self.units)), dtype=np.float32)
        for t, token in enumerate(vocab):
            special = _token_class(token, t, blank_id)
            readings = char_readings(token) if special is None else []
            if special is not None or not readings:
                matrix[t, index[special or UNK]] = 1.0
                continue
            for reading, weight in readings:
                for unit in reading_units(reading):
                    matrix[t, index[unit]] += weight / 3.0
        self.matrix = matrix
        self.vocab = list(vocab)

    def __call__(self, posteriors: np.ndarray) -> np.ndarray:
        """[T, V] rows summing to 1 → [T, U] rows summing to 1."""
        if posteriors.shape[-1] != self.matrix.shape[0]:
            raise ValueError(f"posteriors have {posteriors.shape[-1]} columns, vocabulary has {self.matrix.shape[0]}")
        return posteriors.astype(np.float32) @ self.matrix

    def used_units(self) -> list[str]:
        """Units that at least one token maps to."""
        return [u for u, m in zip(self.units, self.matrix.sum(0)) if m > 0]


def text_units(text: str) -> list[str]:
    """Hanzi text → pinyin units in context (phrase-aware: 银行 hang2, 行走 xing2), for references."""
    from pypinyin import Style, lazy_pinyin

    out: list[str] = []
    for syl in lazy_pinyin(text, style=Style.TONE3, neutral_tone_with_five=True, errors="ignore"):
        if syl[:1].isalpha() and syl[-1:].isdigit():
            out += reading_units(syl)
    return out


__all__ = ["PinyinReducer", "ZERO_INITIAL", "char_readings", "common_hanzi", "is_character_vocab",
           "reduced_units", "text_units"]
