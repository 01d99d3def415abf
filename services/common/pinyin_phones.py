"""How the bundled voice spells pinyin: each initial and final → the nearest phones of its
English espeak inventory (the voice was trained on English phonemes only).

Shared by the TTS (which speaks Mandarin through these spellings) and the audio encoder
(which projects pinyin units onto the same phones). Tones are kept in the syllable labels
but are not voiced: the English model has no trained embedding for tone marks.
"""

from __future__ import annotations

from dataclasses import dataclass

_INITIALS: dict[str, list[str]] = {
    "b": ["b"], "p": ["p"], "m": ["m"], "f": ["f"], "d": ["d"], "t": ["t"],
    "n": ["n"], "l": ["l"], "g": ["ɡ"], "k": ["k"], "h": ["h"],
    "j": ["d", "ʒ"], "q": ["t", "ʃ"], "x": ["ʃ"],
    "zh": ["d", "ʒ"], "ch": ["t", "ʃ"], "sh": ["ʃ"], "r": ["ɹ"],
    "z": ["d", "z"], "c": ["t", "s"], "s": ["s"],
}

# Finals in pypinyin's strict spelling (ü written v). "ˈ" marks the syllable nucleus.
_FINALS: dict[str, list[str]] = {
    "a": ["ˈ", "ɑ", "ː"], "o": ["ˈ", "ɔ", "ː"], "e": ["ˈ", "ʌ"], "i": ["ˈ", "i", "ː"],
    "u": ["ˈ", "u", "ː"], "v": ["ˈ", "j", "u", "ː"], "ê": ["ˈ", "ɛ"],
    "ai": ["ˈ", "a", "ɪ"], "ei": ["ˈ", "e", "ɪ"], "ao": ["ˈ", "a", "ʊ"], "ou": ["ˈ", "o", "ʊ"],
    "an": ["ˈ", "æ", "n"], "en": ["ˈ", "ə", "n"], "ang": ["ˈ", "ɑ", "ŋ"], "eng": ["ˈ", "ʌ", "ŋ"],
    "ong": ["ˈ", "ʊ", "ŋ"], "er": ["ˈ", "ɑ", "ɹ"],
    "ia": ["j", "ˈ", "ɑ", "ː"], "ie": ["j", "ˈ", "ɛ"], "iao": ["j", "ˈ", "a", "ʊ"],
    "iou": ["j", "ˈ", "o", "ʊ"], "iu": ["j", "ˈ", "o", "ʊ"], "ian": ["j", "ˈ", "ɛ", "n"],
    "in": ["ˈ", "i", "n"], "iang": ["j", "ˈ", "ɑ", "ŋ"], "ing": ["ˈ", "i", "ŋ"],
    "iong": ["j", "ˈ", "ʊ", "ŋ"],
    "ua": ["w", "ˈ", "ɑ", "ː"], "uo": ["w", "ˈ", "ɔ", "ː"], "uai": ["w", "ˈ", "a", "ɪ"],
    "uei": ["w", "ˈ", "e", "ɪ"], "ui": ["w", "ˈ", "e", "ɪ"], "uan": ["w", "ˈ", "ɑ", "n"],
    "uen": ["w", "ˈ", "ə", "n"], "un": ["w", "ˈ", "ə", "n"], "uang": ["w", "ˈ", "ɑ", "ŋ"],
    "ueng": ["w", "ˈ", "ʌ", "ŋ"],
    "ve": ["j", "ˈ", "ɛ"], "ue": ["j", "ˈ", "ɛ"], "van": ["j", "ˈ", "ɛ", "n"],
    "vn": ["j", "ˈ", "i", "n"],
    # syllabic nasals (嗯 n, 呣 m, 哼 hng)
    "n": ["ˈ", "ə", "n"], "m": ["ˈ", "ə", "m"], "ng": ["ˈ", "ə", "ŋ"],
}
# "i" after z c s / zh ch sh r is the apical vowel, not [i].
_APICAL = {"z", "c", "s", "zh", "ch", "sh", "r"}
_APICAL_FINAL = ["ˈ", "ɚ"]


@dataclass(frozen=True)
class PinyinSyllable:
    """One syllable: pinyin with tone digit (e.g. 'hang2'), its initial, final and tone."""

    pinyin: str
    initial: str
    final: str
    tone: int
    phonemes: tuple[str, ...]


def unit_phonemes(initial: str | None = None, final: str | None = None) -> list[list[str]]:
    """How the voice spells one pinyin initial or final: the alternatives (a final "i" is
    [i] or, after z c s zh ch sh r, the apical vowel), each without stress/length marks."""
    marks = {"ˈ", "ː"}
    if initial is not None:
        return [[p for p in _INITIALS[initial] if p not in marks]] if initial in _INITIALS else []
    if final is None or final not in _FINALS:
        return []
    spellings = [_FINALS[final]] + ([_APICAL_FINAL] if final == "i" else [])
    return [[p for p in sp if p not in marks] for sp in spellings]


def syllable_phonemes(pinyin_tone3: str) -> PinyinSyllable | None:
    """Spell one TONE3 pinyin syllable with voice phonemes; None if it is not pinyin."""
    tone = int(pinyin_tone3[-1]) if pinyin_tone3[-1:].isdigit() else 5
    # Imported here: pypinyin loads in ~0.3 s
    from pypinyin.contrib.tone_convert import to_finals, to_initials

    bare = pinyin_tone3.rstrip("012345")
    initial = to_initials(bare, strict=True) or ""
    final = to_finals(bare, strict=True) or ""
    if not final and bare in ("m", "n", "ng", "hm", "hng"):
        initial, final = ("h", bare[1:]) if bare.startswith("h") else ("", bare)
    if initial in _APICAL and final == "i":
        rhyme = _APICAL_FINAL
    elif final in _FINALS:
        rhyme = _FINALS[final]
    else:
        return None
    phonemes = tuple(_INITIALS.get(initial, []) + rhyme)
    return PinyinSyllable(f"{bare}{tone}", initial, final, tone, phonemes)
