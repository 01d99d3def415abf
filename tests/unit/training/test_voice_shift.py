"""Pitch, formant and tempo shifts: lengths and timings stay consistent, F0 and formants move."""

import numpy as np
import pytest
from scipy.signal import lfilter

from services.common.types import AudioClip, PhonemeTiming, Speech
from services.training.voice_shift import perturb_speech, shift_voice, warp_formants, wsola
from services.training.voice_stats import median_f0, spectral_centroid

RATE = 16_000


def _vowel(f0: float = 110.0, seconds: float = 1.2) -> np.ndarray:
    """A glottal pulse train at f0 through two formant resonators (600 and 1500 Hz)."""
    n = int(seconds * RATE)
    x = np.zeros(n)
    x[(np.arange(0, seconds, 1 / f0) * RATE).astype(int)] = 1.0
    for f, bw in ((600, 80), (1500, 120)):
        r = np.exp(-np.pi * bw / RATE)
        x = lfilter([1.0], [1, -2 * r * np.cos(2 * np.pi * f / RATE), r * r], x)
    return (0.5 * x / np.abs(x).max()).astype(np.float32)


def test_wsola_stretches_to_the_exact_length_and_keeps_the_pitch():
    x = _vowel()
    for factor in (0.7, 1.3):
        y = wsola(x, factor, RATE)
        assert len(y) == round(len(x) * factor)
        assert median_f0(y, RATE) == pytest.approx(110, rel=0.03)


def test_pitch_shift_keeps_the_length_and_moves_f0():
    x = _vowel()
    for pitch in (0.8, 1.5, 2.0):
        y = shift_voice(x, RATE, pitch=pitch, formant=1.0)
        assert len(y) == len(x) and np.isfinite(y).all() and np.abs(y).max() <= 1.0
        assert median_f0(y, RATE) == pytest.approx(110 * pitch, rel=0.04)


def test_formant_warp_moves_the_envelope_not_the_pitch():
    x = _vowel()
    up, down = warp_formants(x, RATE, 1.2), warp_formants(x, RATE, 0.85)
    assert len(up) == len(down) == len(x)
    assert median_f0(up, RATE) == pytest.approx(110, rel=0.03)
    assert spectral_centroid(up, RATE) > 1.1 * spectral_centroid(x, RATE) > 1.1 * spectral_centroid(down, RATE)


def test_shifts_are_deterministic_and_keep_or_scale_the_timings():
    x = _vowel(seconds=1.0)
    timings = [PhonemeTiming("sil", 0.0, 0.2), PhonemeTiming("a", 0.2, 0.7), PhonemeTiming("sil", 0.7, 1.0)]
    speech = Speech(AudioClip(x, RATE), timings, "a", "en", "test",
                    syllables=[PhonemeTiming("a1", 0.0, 1.0)])
    a, b = perturb_speech(speech, 1.7, 1.15), perturb_speech(speech, 1.7, 1.15)
    assert np.array_equal(a.audio.samples, b.audio.samples)
    assert len(a.audio.samples) == len(x) and a.phonemes == timings
    fast = perturb_speech(speech, 1.2, 1.0, tempo=1.25, voice="test~fast")
    assert fast.voice == "test~fast" and fast.audio.duration == pytest.approx(0.8, abs=1e-3)
    assert fast.phonemes[-1].end == pytest.approx(fast.audio.duration, abs=1e-9)
    assert fast.phonemes[1].start == pytest.approx(0.2 * fast.audio.duration, abs=1e-9)
    assert fast.syllables[-1].end == pytest.approx(fast.audio.duration, abs=1e-9)
