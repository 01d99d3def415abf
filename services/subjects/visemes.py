"""Phonemes → mouth shapes over time: the oracle subject's lip-sync ground truth.

Each phoneme (IPA, as the TTS labels them) or pinyin syllable (Mandarin) maps to a
viseme target: jaw opening and lip rounding in [0, 1], plus a dominance that says how
strongly the target pulls the mouth (bilabial closures must close; word gaps barely
matter). Coarticulation follows Cohen & Massaro's dominance model: at time t the mouth
is the dominance-weighted mean of the targets, each dominance decaying smoothly with
distance from the phoneme's centre, so shapes blend and anticipate their neighbours.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from services.common.types import PhonemeTiming, Speech


@dataclass(frozen=True)
class Viseme:
    open: float  #: jaw/lip opening, 0 closed … 1 wide open
    round: float  #: lip rounding/protrusion, 0 spread … 1 fully rounded
    dominance: float  #: how strongly this target pulls the mouth


REST = Viseme(0.0, 0.1, 0.6)
_GAP = Viseme(0.08, 0.1, 0.05)  # word gap: coarticulation flows through it

# IPA symbols (as espeak/Piper write them) → targets. Diphthongs arrive as two symbols.
_IPA: dict[str, Viseme] = {}


def _put(symbols: str, v: Viseme) -> None:
    for s in symbols.split():
        _IPA[s] = v


_put("ɑ a ɐ ä", Viseme(0.95, 0.05, 1.0))
_put("æ", Viseme(0.8, 0.0, 1.0))
_put("ʌ", Viseme(0.7, 0.05, 1.0))
_put("ɒ", Viseme(0.85, 0.45, 1.0))
_put("ɔ", Viseme(0.7, 0.65, 1.0))
_put("o", Viseme(0.5, 0.8, 1.0))
_put("ʊ", Viseme(0.35, 0.75, 1.0))
_put("u ɯ", Viseme(0.25, 1.0, 1.0))
_put("y ʏ", Viseme(0.22, 0.9, 1.0))
_put("ɛ e", Viseme(0.6, 0.0, 1.0))
_put("ɪ", Viseme(0.4, 0.0, 1.0))
_put("i", Viseme(0.3, 0.0, 1.0))
_put("ə ɜ ᵻ ɨ", Viseme(0.5, 0.1, 0.7))
_put("ɚ ɝ", Viseme(0.45, 0.4, 0.8))
_put("p b m", Viseme(0.0, 0.15, 3.0))  # bilabial closure always wins
_put("f v", Viseme(0.08, 0.0, 2.0))
_put("θ ð", Viseme(0.2, 0.0, 1.2))
_put("t d n l ɾ s z", Viseme(0.2, 0.05, 0.8))
_put("ʃ ʒ tʃ dʒ ɕ ʑ ʂ ʐ", Viseme(0.2, 0.6, 1.2))
_put("k ɡ g ŋ x", Viseme(0.3, 0.05, 0.6))
_put("h ʔ", Viseme(0.35, 0.1, 0.3))
_put("w ʍ", Viseme(0.12, 1.0, 1.5))
_put("ɹ r", Viseme(0.25, 0.45, 1.0))
_put("j", Viseme(0.22, 0.0, 0.8))


def ipa_viseme(symbol: str) -> Viseme:
    """Target for one phoneme label; 'sil' rests, ' ' is a weak word gap."""
    if symbol == "sil" or not symbol:
        return REST
    if symbol == " ":
        return _GAP
    base = symbol.strip("ˈˌːˑ")
    if base in _IPA:
        return _IPA[base]
    if base[:1] in _IPA:  # affricates, length or nasal marks written as extra characters
        return _IPA[base[:1]]
    return Viseme(0.3, 0.1, 0.3)  # unknown sound: mild, weak


# Pinyin (strict initials/finals, ü written v) → IPA keys of the table above.
_PINYIN_INITIAL = {
    "b": "b", "p": "p", "m": "m", "f": "f", "d": "d", "t": "t", "n": "n", "l": "l",
    "g": "g", "k": "k", "h": "h", "j": "ɕ", "q": "ɕ", "x": "ɕ", "zh": "ʂ", "ch": "ʂ",
    "sh": "ʂ", "r": "ɹ", "z": "s", "c": "s", "s": "s", "y": "j", "w": "w",
}
_PINYIN_FINAL = {
    "a": "a", "o": "o", "e": "ə", "i": "i", "u": "u", "v": "y", "ê": "ɛ", "er": "ɚ",
    "ai": "a ɪ", "ei": "e ɪ", "ao": "a ʊ", "ou": "o ʊ", "an": "a n", "en": "ə n",
    "ang": "ɑ ŋ", "eng": "ə ŋ", "ong": "ʊ ŋ", "ia": "j a", "ie": "j ɛ", "iao": "j a ʊ",
    "iou": "j o ʊ", "iu": "j o ʊ", "ian": "j ɛ n", "in": "i n", "iang": "j ɑ ŋ",
    "ing": "i ŋ", "iong": "j ʊ ŋ", "ua": "w a", "uo": "w o", "uai": "w a ɪ",
    "uei": "w e ɪ", "ui": "w e ɪ", "uan": "w a n", "uen": "w ə n", "un": "w ə n",
    "uang": "w ɑ ŋ", "ueng": "w ə ŋ", "ve": "y ɛ", "ue": "y ɛ", "van": "y ɛ n",
    "vn": "y n", "n": "ə n", "m": "m", "ng": "ŋ",
}
_APICAL = {"z", "c", "s", "zh", "ch", "sh", "r"}


def pinyin_units(syllable: str) -> list[tuple[str, float]]:
    """Split a TONE3 pinyin syllable ('hang2') into (IPA key, share of duration)."""
    from pypinyin.contrib.tone_convert import to_finals, to_initials

    bare = syllable.rstrip("012345").lower().replace("ü", "v")
    if not bare or bare == "sil":
        return [("sil", 1.0)]
    initial = to_initials(bare, strict=True) or ""
    final = to_finals(bare, strict=True) or ""
    if not final and not initial:
        return [("sil", 1.0)]
    vowels = ["ɚ"] if (initial in _APICAL and final == "i") else _PINYIN_FINAL.get(final, "ə").split()
    units: list[tuple[str, float]] = []
    share = 1.0
    if initial:
        units.append((_PINYIN_INITIAL.get(initial, "t"), 0.3))
        share = 0.7
    units += [(v, share / len(vowels)) for v in vowels]
    return units


def _expand_pinyin(syllables: Sequence[PhonemeTiming]) -> list[PhonemeTiming]:
    out: list[PhonemeTiming] = []
    for s in syllables:
        start = s.start
        for key, share in pinyin_units(s.phoneme):
            end = start + share * (s.end - s.start)
            out.append(PhonemeTiming(key, start, end))
            start = end
    return out


def speech_units(speech: Speech) -> list[PhonemeTiming]:
    """The timed units that drive the mouth: IPA phonemes, else expanded pinyin syllables."""
    if any(p.phoneme not in ("sil", " ") for p in speech.phonemes):
        return list(speech.phonemes)
    return _expand_pinyin(speech.syllables)


def _blend(units: Sequence[PhonemeTiming], times: np.ndarray, chunk: int) -> np.ndarray:
    """[T,3] per time: opening, rounding and the share of the pull that is the rest (silence)."""
    times = np.asarray(times, np.float64)
    if not units:
        return np.tile(np.array([REST.open, REST.round, 1.0]), (len(times), 1))
    vis = [ipa_viseme(u.phoneme) for u in units]
    centre = np.array([(u.start + u.end) / 2 for u in units])
    # Width of influence grows with the phoneme's length; short sounds still anticipate.
    width = np.array([max(u.end - u.start, 0.0) / 2 + 0.03 for u in units])
    alpha = np.array([v.dominance for v in vis])
    target = np.array([[v.open, v.round, float(v is REST)] for v in vis])
    # Before the first and after the last unit the face rests.
    lo, hi = units[0].start, units[-1].end
    out = np.empty((len(times), 3))
    order = np.argsort(centre)
    centre, width, alpha, target = centre[order], width[order], alpha[order], target[order]
    reach = 5.0 * width.max()
    for s in range(0, len(times), chunk):
        t = times[s:s + chunk]
        a = np.searchsorted(centre, t.min() - reach)
        b = np.searchsorted(centre, t.max() + reach)
        dist = np.abs(t[:, None] - centre[None, a:b]) / width[None, a:b]
        dom = alpha[None, a:b] * np.exp(-(dist ** 2))
        outside = np.clip(np.maximum(lo - t, t - hi) / 0.1, 0.0, None)
        rest = 0.01 + REST.dominance * (1.0 - np.exp(-outside))
        num = dom @ target[a:b] + rest[:, None] * np.array([REST.open, REST.round, 1.0])
        out[s:s + chunk] = num / (dom.sum(1) + rest)[:, None]
    return out


def mouth_track(units: Sequence[PhonemeTiming], times: np.ndarray, chunk: int = 512
                ) -> tuple[np.ndarray, np.ndarray]:
    """(opening, rounding) at each time in seconds, both float32 in [0, 1]."""
    out = _blend(units, times, chunk)
    return out[:, 0].astype(np.float32), out[:, 1].astype(np.float32)


def rest_share(units: Sequence[PhonemeTiming], times: np.ndarray, chunk: int = 512) -> np.ndarray:
    """float32 [T] in [0, 1]: how much of the mouth's pull at each time is the rest (silence:
    1 before and after the speech and in pauses, near 0 while sounds are spoken; a closure
    such as /m/ is a sound, not the rest)."""
    return _blend(units, times, chunk)[:, 2].astype(np.float32)


def speech_mouth_track(speech: Speech, n_frames: int, fps: float) -> tuple[np.ndarray, np.ndarray]:
    """Per-video-frame (opening, rounding), sampled at each frame's presentation time i/fps."""
    times = np.arange(n_frames) / fps
    return mouth_track(speech_units(speech), times)
