"""Generated noises and rooms for denoiser training and evaluation (pure numpy/scipy).

Training kinds: white, pink, brown, babble (overlapped speech), hum (mains fundamental with
harmonics), clicks (impulsive bursts), shaped (noise under a random smooth spectral envelope
that drifts in level: fans, HVAC, traffic, road rumble), tones (beeps, whistles and
alarms: a few sinusoids, gated and gliding), fluctuating (coloured noise whose level
pulses or wanders: engines, rotors, passing cars, wind gusts) and music (notes of harmonic
tones in 1–3 voices with percussive bursts). Held-out kinds, never produced in training, are
used by the benchmark: machine (modulated unrelated tones + band noise) and bandnoise
(Butterworth band-passed noise). Rooms: synthetic exponentially decaying impulse responses.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.signal import butter, fftconvolve, sosfilt

KINDS: tuple[str, ...] = ("white", "pink", "brown", "babble", "hum", "clicks", "shaped", "tones",
                          "fluctuating", "music")
HELDOUT_KINDS: tuple[str, ...] = ("machine", "bandnoise")


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64)) + 1e-20))


def mix_at_snr(clean: np.ndarray, noise: np.ndarray, snr_db: float) -> np.ndarray:
    """clean + noise scaled so that 10·log10(P_clean / P_noise) = snr_db."""
    gain = rms(clean) / (rms(noise) * 10 ** (snr_db / 20))
    return (clean + gain * noise).astype(np.float32)


def _colored(n: int, rng: np.random.Generator, exponent: float) -> np.ndarray:
    """Noise with power spectrum ∝ 1/f^exponent (0 white, 1 pink, 2 brown)."""
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.arange(len(spec), dtype=np.float64)
    f[0] = 1.0
    spec *= f ** (-exponent / 2)
    spec[0] = 0.0
    out = np.fft.irfft(spec, n)
    return out / rms(out)


def _babble(n: int, rng: np.random.Generator, source: Sequence[np.ndarray]) -> np.ndarray:
    out = np.zeros(n)
    for _ in range(int(rng.integers(3, 9))):
        talker = np.zeros(0)
        while len(talker) < n + 1:
            talker = np.concatenate([talker, source[int(rng.integers(len(source)))]])
        start = int(rng.integers(0, len(talker) - n))
        seg = talker[start:start + n]
        out += seg / rms(seg) * rng.uniform(0.5, 1.0)
    return out / rms(out)


def _hum(n: int, rng: np.random.Generator, sr: int) -> np.ndarray:
    t = np.arange(n) / sr
    f0 = float(rng.choice([50.0, 60.0])) * rng.uniform(0.98, 1.02)
    drift = 1 + 0.002 * np.sin(2 * np.pi * rng.uniform(0.05, 0.5) * t)
    out = np.zeros(n)
    for k in range(1, int(rng.integers(5, 30))):
        if k * f0 >= sr / 2:
            break
        amp = rng.uniform(0.2, 1.0) / k ** rng.uniform(0.3, 1.5)
        out += amp * np.sin(2 * np.pi * k * f0 * t * drift + rng.uniform(0, 2 * np.pi))
    out += 0.02 * rng.standard_normal(n)
    return out / rms(out)


def _clicks(n: int, rng: np.random.Generator, sr: int) -> np.ndarray:
    out = 0.002 * rng.standard_normal(n)
    count = rng.poisson(rng.uniform(2, 30) * n / sr) + 1
    for pos in rng.integers(0, n, size=count):
        length = int(rng.uniform(0.001, 0.012) * sr)
        burst = rng.standard_normal(length) * np.exp(-np.arange(length) / (length / 4))
        end = min(n, pos + length)
        out[pos:end] += rng.uniform(0.2, 1.0) * burst[:end - pos]
    return out / rms(out)


def _shaped(n: int, rng: np.random.Generator, sr: int) -> np.ndarray:
    """White noise under a random log-spectral envelope (a tilt plus 1–4 bumps or notches on
    a log-frequency axis, ±18 dB) with a slow level drift: broadband noise of any colour."""
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.maximum(np.fft.rfftfreq(n, 1 / sr), 20.0)
    octave = np.log2(f / 1000.0)
    log_gain = rng.uniform(-6, 6) * octave  # dB per octave around 1 kHz
    for _ in range(int(rng.integers(1, 5))):
        centre, width = rng.uniform(np.log2(80 / 1000), np.log2(7000 / 1000)), rng.uniform(0.2, 2.0)
        log_gain += rng.uniform(-18, 18) * np.exp(-0.5 * ((octave - centre) / width) ** 2)
    out = np.fft.irfft(spec * 10 ** (log_gain / 20), n)
    t = np.arange(n) / sr
    out *= 1 + rng.uniform(0, 0.6) * np.sin(2 * np.pi * rng.uniform(0.05, 2.0) * t + rng.uniform(0, 2 * np.pi))
    return out / rms(out)


def _tones(n: int, rng: np.random.Generator, sr: int) -> np.ndarray:
    """1–4 sinusoids (200–4000 Hz) with their own on/off gating and optional glide or
    vibrato, over a faint noise floor: beeps, ringing, whistles, sirens."""
    t = np.arange(n) / sr
    out = np.zeros(n)
    for _ in range(int(rng.integers(1, 5))):
        f0 = rng.uniform(200, 4000)
        glide = rng.choice([0.0, rng.uniform(-0.3, 0.3)])  # octaves per second
        vibrato = rng.choice([0.0, rng.uniform(0.005, 0.05)]) * np.sin(2 * np.pi * rng.uniform(2, 8) * t)
        freq = np.clip(f0 * 2 ** (glide * t) * (1 + vibrato), 50, sr / 2 - 100)
        phase = 2 * np.pi * np.cumsum(freq) / sr
        period = rng.uniform(0.1, 1.5)
        gate = ((t + rng.uniform(0, period)) % period) < period * rng.uniform(0.2, 1.0)
        gate = np.convolve(gate.astype(float), np.hanning(int(0.004 * sr) + 1), "same")  # no clicks
        out += rng.uniform(0.3, 1.0) * gate * np.sin(phase + rng.uniform(0, 2 * np.pi))
    out += 0.01 * rng.standard_normal(n) * (rms(out) + 1e-3)
    return out / rms(out)


def _fluctuating(n: int, rng: np.random.Generator, sr: int) -> np.ndarray:
    """Coloured noise (1/f^0…2) under a level envelope that either pulses (0.5–25 Hz,
    depth 0.3–1) or wanders (smoothed random walk, up to ±12 dB): non-stationary noise,
    which a denoiser cannot learn from one quiet stretch."""
    out = _colored(n, rng, rng.uniform(0.0, 2.0))
    t = np.arange(n) / sr
    if rng.random() < 0.5:
        shape = np.sin(2 * np.pi * rng.uniform(0.5, 25.0) * t + rng.uniform(0, 2 * np.pi))
        envelope = 1 + rng.uniform(0.3, 1.0) * np.sign(shape) * np.abs(shape) ** rng.uniform(0.3, 2.0)
    else:
        steps = rng.standard_normal(n // 160 + 2).cumsum()
        db = np.interp(np.arange(n) / 160, np.arange(len(steps)), steps)
        db = (db - db.mean()) / (np.ptp(db) + 1e-9) * rng.uniform(6, 24)
        envelope = 10 ** (db / 20)
    out = out * np.maximum(envelope, 0.0)
    return out / rms(out)


def _music(n: int, rng: np.random.Generator, sr: int) -> np.ndarray:
    """1–3 voices of notes (80–1000 Hz harmonic tones, 3–12 partials, plucked or held),
    0.1–0.8 s each, over optional percussive noise bursts."""
    out = np.zeros(n)
    for _ in range(int(rng.integers(1, 4))):
        pos = -int(rng.uniform(0, 0.5) * sr)
        partials = int(rng.integers(3, 13))
        rolloff = rng.uniform(0.5, 2.0)
        while pos < n:
            length = int(rng.uniform(0.1, 0.8) * sr)
            f0 = 80 * 2 ** rng.uniform(0, np.log2(1000 / 80))
            t = np.arange(length) / sr
            note = sum(np.sin(2 * np.pi * k * f0 * t + rng.uniform(0, 2 * np.pi)) / k ** rolloff
                       for k in range(1, partials + 1) if k * f0 < sr / 2 - 200)
            decay = rng.choice([rng.uniform(3, 15), 0.0])  # plucked or held
            fade_out = np.minimum(1.0, (length - np.arange(length)) / (0.01 * sr))
            env = np.exp(-decay * t) * np.minimum(1.0, t / 0.005) * fade_out
            lo, hi = max(pos, 0), min(n, pos + length)
            if hi > lo:
                out[lo:hi] += rng.uniform(0.4, 1.0) * (note * env)[lo - pos:hi - pos]
            pos += length
    if rng.random() < 0.5:  # drums: decaying noise bursts on a beat
        beat = int(rng.uniform(0.25, 0.7) * sr)
        for start in range(int(rng.integers(0, beat)), n, beat):
            length = min(n - start, int(rng.uniform(0.03, 0.15) * sr))
            burst = _colored(length, rng, rng.uniform(0, 2)) * np.exp(-np.arange(length) / (length / 5))
            level = rms(out[max(0, start - beat):start + 1])  # drums sit under the notes' level
            out[start:start + length] += rng.uniform(0.2, 0.8) * level * burst
    return out / rms(out)


def _machine(n: int, rng: np.random.Generator, sr: int) -> np.ndarray:
    t = np.arange(n) / sr
    out = np.zeros(n)
    for _ in range(int(rng.integers(2, 6))):
        f = rng.uniform(150, 3000)
        am = 1 + 0.8 * np.sin(2 * np.pi * rng.uniform(2, 20) * t + rng.uniform(0, 6.3))
        out += rng.uniform(0.3, 1.0) * am * np.sin(2 * np.pi * f * t)
    lo = rng.uniform(100, 1500)
    sos = butter(2, [lo, min(sr / 2 - 100, lo * rng.uniform(2, 5))], "bandpass", fs=sr, output="sos")
    out = out / rms(out) + sosfilt(sos, rng.standard_normal(n)) * rng.uniform(1, 4)
    return out / rms(out)


def _bandnoise(n: int, rng: np.random.Generator, sr: int) -> np.ndarray:
    lo = rng.uniform(200, 3000)
    hi = min(sr / 2 - 100, lo * rng.uniform(1.5, 4))
    sos = butter(4, [lo, hi], "bandpass", fs=sr, output="sos")
    out = sosfilt(sos, rng.standard_normal(n))
    return out / rms(out)


def generate(kind: str, n: int, rng: np.random.Generator, sr: int,
             babble_source: Sequence[np.ndarray] | None = None) -> np.ndarray:
    """n samples of unit-RMS noise of `kind` (see KINDS and HELDOUT_KINDS)."""
    if kind == "white":
        return _colored(n, rng, 0.0)
    if kind == "pink":
        return _colored(n, rng, 1.0)
    if kind == "brown":
        return _colored(n, rng, 2.0)
    if kind == "babble":
        if not babble_source:
            raise ValueError("babble noise needs speech to overlap (babble_source)")
        return _babble(n, rng, babble_source)
    if kind == "hum":
        return _hum(n, rng, sr)
    if kind == "clicks":
        return _clicks(n, rng, sr)
    if kind == "shaped":
        return _shaped(n, rng, sr)
    if kind == "tones":
        return _tones(n, rng, sr)
    if kind == "fluctuating":
        return _fluctuating(n, rng, sr)
    if kind == "music":
        return _music(n, rng, sr)
    if kind == "machine":
        return _machine(n, rng, sr)
    if kind == "bandnoise":
        return _bandnoise(n, rng, sr)
    raise ValueError(f"unknown noise kind {kind!r}")


def room_impulse_response(rng: np.random.Generator, sr: int) -> tuple[np.ndarray, int]:
    """A synthetic RIR (direct path, sparse early reflections, exponential tail) and the
    sample index where the 'early' part ends (direct + 50 ms)."""
    rt60 = rng.uniform(0.2, 0.9)
    length = int(rt60 * sr)
    t = np.arange(length) / sr
    tail = rng.standard_normal(length) * np.exp(-6.9 * t / rt60)  # −60 dB at rt60
    delay = int(rng.uniform(0.0, 0.005) * sr)
    rir = np.zeros(length + delay)
    rir[delay:] = tail * rng.uniform(0.2, 0.6)
    rir[delay] = 1.0
    for _ in range(int(rng.integers(3, 10))):
        rir[delay + int(rng.uniform(0.002, 0.05) * sr)] += rng.uniform(-0.6, 0.6)
    return rir, delay + int(0.05 * sr)


def reverberate(clean: np.ndarray, rng: np.random.Generator, sr: int) -> tuple[np.ndarray, np.ndarray]:
    """(reverberant, early-reflections-only) versions of clean, same length and level.

    Training targets keep the early part: the denoiser removes the late tail, as in the
    DNS challenge convention, without trying to undo the room entirely.
    """
    rir, early_end = room_impulse_response(rng, sr)
    wet = fftconvolve(clean, rir)[:len(clean)]
    early_rir = rir.copy()
    early_rir[early_end:] = 0.0
    early = fftconvolve(clean, early_rir)[:len(clean)]
    scale = rms(clean) / rms(early)
    return (wet * scale).astype(np.float32), (early * scale).astype(np.float32)
