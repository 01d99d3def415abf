"""Turn per-symbol sample counts into phoneme timings that tile the audio exactly."""

from __future__ import annotations

from collections.abc import Sequence

from services.common.types import PhonemeTiming

SILENCE = "sil"
WORD_GAP = " "
# Symbols that modify a neighbour rather than being sounds of their own.
_STRESS = {"ˈ", "ˌ"}
_LENGTH = {"ː", "ˑ"}
_BOUNDARY = {"^", "$", "_", ",", ".", "!", "?", ";", ":", "-", "(", ")", '"', "'"}


def symbols_to_timings(symbols: Sequence[str], samples: Sequence[int], sample_rate: int
                       ) -> list[PhonemeTiming]:
    """Merge stress/length marks into their phoneme, boundaries into 'sil' runs.

    The returned timings are contiguous, start at 0 and end at sum(samples)/sample_rate.
    """
    units: list[list] = []  # [label, n_samples]
    carry = 0  # samples of a stress mark waiting for its phoneme
    for sym, n in zip(symbols, samples, strict=True):
        n = int(n)
        if sym in _STRESS:
            carry += n
            continue
        if sym in _LENGTH and units:
            units[-1][1] += n
            continue
        label = SILENCE if sym in _BOUNDARY else sym
        if units and label == SILENCE and units[-1][0] == SILENCE:
            units[-1][1] += n + carry
        else:
            units.append([label, n + carry])
        carry = 0
    if carry:
        if units:
            units[-1][1] += carry
        else:
            units.append([SILENCE, carry])
    timings: list[PhonemeTiming] = []
    pos = 0
    for label, n in units:
        if n == 0:
            continue
        timings.append(PhonemeTiming(label, pos / sample_rate, (pos + n) / sample_rate))
        pos += n
    return timings
