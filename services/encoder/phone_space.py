"""A shared phone space for the content path: pinyin units → the phones that spell them.

Lips follow articulation, not language. With posteriors over disjoint English-phone and
pinyin-unit columns, a subject trained on mostly English speech sees each pinyin column
only a few times and its Mandarin mouth stays poor. Projecting every pinyin initial/final
onto the IPA phones the voice spells it with (zh- → d ʒ, -ang → ɑ ŋ; mass split evenly
over the phones and over alternative spellings) puts both languages in the same columns,
so what the encoder learns from English transfers. Rows still sum to 1.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from services.common.pinyin_phones import unit_phonemes
from services.encoder.units import BLANK

SPACES = ("units", "phones")


def _pinyin_spellings(unit: str) -> list[list[str]] | None:
    """Phone spellings of a pinyin unit name ("zh-", "-ang"); None if `unit` is not pinyin;
    [] for tones (no articulation of their own)."""
    if len(unit) > 1 and unit.endswith("-"):
        return unit_phonemes(initial=unit[:-1])
    if len(unit) > 1 and unit.startswith("-"):
        return unit_phonemes(final=unit[1:])
    if len(unit) == 2 and unit[0] == "T" and unit[1].isdigit():
        return []
    return None


class PhoneSpace:
    """Linear map from a unit vocabulary's posteriors to shared phone columns."""

    def __init__(self, units: Sequence[str]) -> None:
        spellings = {u: _pinyin_spellings(u) for u in units}
        columns = [u for u in units if spellings[u] is None]
        extra = sorted({p for sp in spellings.values() if sp for alt in sp for p in alt} - set(columns))
        self.columns: list[str] = columns + extra
        index = {c: k for k, c in enumerate(self.columns)}
        blank = index.get(BLANK, 0)
        m = np.zeros((len(units), len(self.columns)), dtype=np.float32)
        for r, u in enumerate(units):
            sp = spellings[u]
            if sp is None:
                m[r, index[u]] = 1.0
            elif not sp or not any(sp):
                m[r, blank] = 1.0  # tones: no mouth shape of their own
            else:
                alts = [alt for alt in sp if alt]
                for alt in alts:
                    for p in alt:
                        m[r, index[p]] += 1.0 / (len(alts) * len(alt))
        self.matrix = m

    @property
    def dim(self) -> int:
        return len(self.columns)

    def __call__(self, posteriors: np.ndarray) -> np.ndarray:
        """[T, units] → [T, phones] (rows keep their sum)."""
        return (posteriors.astype(np.float32) @ self.matrix).astype(np.float32)
