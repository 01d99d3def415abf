from __future__ import annotations

import numpy as np
import pytest

from services.denoise import noise
from services.denoise.data import MixtureConfig, SpeechCache, make_mixture


def _speech(n=16000, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(n) / 16000
    return (np.sin(2 * np.pi * 200 * t) * (1 + np.sin(2 * np.pi * 3 * t)) * 0.3
            + 0.01 * rng.standard_normal(n)).astype(np.float32)


@pytest.mark.parametrize("kind", noise.KINDS + noise.HELDOUT_KINDS)
def test_every_kind_is_unit_rms_finite_and_seeded(kind):
    src = [_speech(8000, s) for s in range(4)]
    a = noise.generate(kind, 8000, np.random.default_rng(1), 16000, babble_source=src)
    b = noise.generate(kind, 8000, np.random.default_rng(1), 16000, babble_source=src)
    assert a.shape == (8000,) and np.isfinite(a).all()
    assert abs(noise.rms(a) - 1.0) < 1e-6
    assert np.array_equal(a, b)


def test_colored_noise_spectral_slopes():
    rng = np.random.default_rng(0)
    def low_high_ratio(x):
        p = np.abs(np.fft.rfft(x)) ** 2
        f = np.fft.rfftfreq(len(x), 1 / 16000)
        return p[(f > 100) & (f < 200)].mean() / p[(f > 3000) & (f < 6000)].mean()
    white, pink, brown = (noise.generate(k, 64000, rng, 16000) for k in ("white", "pink", "brown"))
    assert 0.5 < low_high_ratio(white) < 2
    assert 10 < low_high_ratio(pink) < 100        # 1/f: ≈ 4500/150 = 30
    assert low_high_ratio(brown) > 300             # 1/f²: ≈ 900


@pytest.mark.parametrize("snr", [-5.0, 0.0, 12.5])
def test_mix_at_snr_is_exact(snr):
    clean = _speech()
    n = noise.generate("white", len(clean), np.random.default_rng(2), 16000)
    mix = noise.mix_at_snr(clean, n, snr)
    measured = 10 * np.log10(np.sum(clean.astype(np.float64) ** 2) / np.sum((mix - clean).astype(np.float64) ** 2))
    assert abs(measured - snr) < 1e-3


def test_reverb_target_is_early_part():
    wet, early = noise.reverberate(_speech(), np.random.default_rng(3), 16000)
    assert wet.shape == early.shape == (16000,)
    assert not np.allclose(wet, early)


def test_mixtures_have_the_configured_length_and_stay_in_range():
    cache = SpeechCache([_speech(12000, s) for s in range(5)], ["x"] * 5)
    rng = np.random.default_rng(4)
    for _ in range(10):
        noisy, clean = make_mixture(cache, rng, MixtureConfig(seconds=0.5))
        assert noisy.shape == clean.shape == (8000,)
        assert np.abs(noisy).max() <= 1.0 and np.isfinite(noisy).all()


def test_tones_are_peaky_and_shaped_noise_is_broadband_of_varied_colour():
    def power(x):
        return np.abs(np.fft.rfft(x)) ** 2 + 1e-12

    def flatness(x):  # geometric / arithmetic mean of the power spectrum: 1 white, → 0 tonal
        p = power(x)
        return float(np.exp(np.mean(np.log(p))) / p.mean())

    f = np.fft.rfftfreq(32000, 1 / 16000)
    ratios = []
    for seed in range(6):
        assert flatness(noise.generate("tones", 32000, np.random.default_rng(seed), 16000)) < 0.01
        x = noise.generate("shaped", 32000, np.random.default_rng(seed), 16000)
        p = power(x)
        bands = [p[(f >= lo) & (f < lo + 500)].sum() for lo in range(100, 7600, 500)]
        assert min(bands) / sum(bands) > 1e-6  # every 500 Hz band carries some noise: broadband
        ratios.append(p[(f > 100) & (f < 500)].mean() / p[(f > 2000) & (f < 6000)].mean())
    assert max(ratios) / min(ratios) > 10  # colours differ from draw to draw
