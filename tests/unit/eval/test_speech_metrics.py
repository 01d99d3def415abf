"""Known answers for the speech metrics."""

from __future__ import annotations

import numpy as np
import pytest

from services.eval import speech as m


def _voiced(n=32000, sr=16000, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(n) / sr
    f0 = 140 + 30 * np.sin(2 * np.pi * 0.7 * t)
    phase = 2 * np.pi * np.cumsum(f0) / sr
    x = sum(np.sin(k * phase) / k for k in range(1, 25))
    env = 0.5 * (1 + np.sin(2 * np.pi * 2.5 * t)) ** 2
    return (0.1 * x * env + 1e-3 * rng.standard_normal(n)).astype(np.float64)


def test_si_sdr_known_value_and_scale_invariance():
    rng = np.random.default_rng(1)
    ref = rng.standard_normal(8000)
    ref -= ref.mean()
    noise = rng.standard_normal(8000)
    noise -= noise.mean()
    noise -= (noise @ ref) / (ref @ ref) * ref          # orthogonal to ref
    noise *= np.linalg.norm(ref) / np.linalg.norm(noise) / 10 ** (10 / 20)  # 10 dB below
    assert m.si_sdr(ref, ref + noise) == pytest.approx(10.0, abs=1e-6)
    assert m.si_sdr(ref, 3.0 * (ref + noise)) == pytest.approx(10.0, abs=1e-6)
    assert m.si_sdr(ref, -ref) > 100  # sign is a scale too


def test_seg_snr_of_a_scaled_copy_is_exact_and_clipped():
    ref = _voiced()
    assert m.seg_snr(ref, 0.9 * ref, 16000) == pytest.approx(20.0, abs=1e-6)  # 10·log10(1/0.01)
    assert m.seg_snr(ref, ref, 16000) == pytest.approx(35.0)   # upper clip
    assert m.seg_snr(ref, -9 * ref, 16000) == pytest.approx(-10.0)  # lower clip (−20 dB)


def test_stoi_and_pesq_extremes():
    ref = _voiced(48000)
    assert m.stoi(ref, ref, 16000) == pytest.approx(1.0, abs=1e-6)
    assert m.pesq_wb(ref, ref, 16000) == pytest.approx(4.644, abs=0.01)  # P.862.2 maximum
    noisy = ref + 0.3 * np.random.default_rng(2).standard_normal(len(ref)) * ref.std()
    very_noisy = ref + 3 * np.random.default_rng(2).standard_normal(len(ref)) * ref.std()
    assert m.stoi(ref, very_noisy, 16000) < m.stoi(ref, noisy, 16000) < 1.0
    assert m.pesq_wb(ref, very_noisy, 16000) < m.pesq_wb(ref, noisy, 16000) < 4.0


def test_mcd_is_zero_for_gain_changes_and_grows_with_distortion():
    ref = _voiced()
    assert m.mcd(ref, ref, 16000) == pytest.approx(0.0, abs=1e-9)
    assert m.mcd(ref, 0.25 * ref, 16000) == pytest.approx(0.0, abs=1e-4)  # gain lives in c0 only
    rng = np.random.default_rng(3)
    small = m.mcd(ref, ref + 0.05 * ref.std() * rng.standard_normal(len(ref)), 16000)
    large = m.mcd(ref, ref + 1.0 * ref.std() * rng.standard_normal(len(ref)), 16000)
    assert 0 < small < large


def test_mcd_of_a_pure_spectral_tilt_is_what_the_cepstrum_says():
    """x'' (a derivative) tilts the spectrum by |ω|²: the distortion is large and equals the
    cepstral distance of the two signals, frame by frame, averaged (no silence here)."""
    rng = np.random.default_rng(4)
    x = rng.standard_normal(32000)
    d = np.diff(x, 2, prepend=[0.0, 0.0])
    expected = np.mean(10 / np.log(10) * np.sqrt(
        2 * ((m.mel_cepstrum(x, 16000) - m.mel_cepstrum(d, 16000))[:, 1:] ** 2).sum(1)))
    assert m.mcd(x, d, 16000) == pytest.approx(expected)
    assert m.mcd(x, d, 16000) > 5 * m.mcd(x, x + 0.1 * rng.standard_normal(32000), 16000)


def test_wss_is_zero_for_identical_and_ranks_distortion():
    ref = _voiced()
    assert m.wss(ref, ref, 16000) == pytest.approx(0.0, abs=1e-9)
    rng = np.random.default_rng(5)
    a = m.wss(ref, ref + 0.05 * ref.std() * rng.standard_normal(len(ref)), 16000)
    b = m.wss(ref, ref + 1.0 * ref.std() * rng.standard_normal(len(ref)), 16000)
    assert 0 < a < b


def test_length_mismatch_is_an_error():
    with pytest.raises(ValueError):
        m.si_sdr(np.ones(10), np.ones(11))
