"""Other speakers from one clip: pitch, formant (vocal-tract length) and tempo changes.

Pure numpy/scipy, deterministic:
- tempo: WSOLA (waveform-similarity overlap-add) time-stretch; pitch and formants stay.
- pitch: resample (pitch, formants and tempo all move by the factor), then WSOLA back to
  the original length; the formants are then put where `formant` asks.
- formant: vocal-tract-length warp of the spectral envelope only. The STFT magnitude is
  split into a cepstrally smoothed envelope (below ~2 ms quefrency, so no harmonics) and
  the rest; the envelope is warped along frequency (formants × factor) and the original
  phase and harmonics are kept, so the pitch does not move.

A pitch or formant change keeps the length to the sample, so a Speech's timings stay
valid as they are; a tempo change scales them by the exact length ratio.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
from scipy.signal import istft, stft

from services.common.audio import resample
from services.common.types import AudioClip, PhonemeTiming, Speech

#: Envelope smoothing: cepstral coefficients below this quefrency (seconds) are the
#: vocal tract; a 2 ms cut stays under the pitch period of voices up to 500 Hz.
ENVELOPE_QUEFRENCY = 0.002
#: The envelope ratio is clipped to this range so a warp cannot amplify near-silent bins.
MAX_GAIN = 8.0


def _fit(x: np.ndarray, n: int) -> np.ndarray:
    return np.pad(x, (0, n - len(x))) if len(x) < n else x[:n]


def wsola(x: np.ndarray, factor: float, rate: int) -> np.ndarray:
    """Time-stretch by `factor` (> 1 longer) without moving pitch: output length
    round(len(x)·factor). 30 ms Hann frames at half overlap, centred on their nominal
    times; each next frame is taken within ±half a hop of its nominal place, where it best
    continues the last one."""
    x = np.asarray(x, dtype=np.float64)
    n_out = int(round(len(x) * factor))
    if abs(factor - 1.0) < 1e-6 or len(x) == 0:
        return _fit(x, n_out).astype(np.float32)
    frame = int(0.03 * rate) // 2 * 2
    hop, half = frame // 2, frame // 2
    tol = hop // 2
    window = np.hanning(frame)
    pad = frame + tol
    xp = np.pad(x, (pad, pad + 2 * frame + int(np.ceil(3 * hop / factor))))
    n_frames = (n_out + half) // hop + 2
    y = np.zeros(n_frames * hop + frame)
    wsum = np.zeros_like(y)
    prev = pad - half
    for k in range(n_frames):
        nominal = pad - half + int(round(k * hop / factor))
        start = nominal
        if k > 0:
            natural = xp[prev + hop:prev + hop + frame]
            lo = nominal - tol
            region = xp[lo:nominal + tol + frame]
            if len(region) >= frame and len(natural) == frame:
                start = lo + int(np.argmax(np.correlate(region, natural, mode="valid")))
        y[k * hop:k * hop + frame] += window * xp[start:start + frame]
        wsum[k * hop:k * hop + frame] += window
        prev = start
    y = y / np.maximum(wsum, 1e-3)
    return _fit(y[half:], n_out).astype(np.float32)


def warp_formants(x: np.ndarray, rate: int, factor: float) -> np.ndarray:
    """Move the spectral envelope's formants by `factor` (> 1 a shorter vocal tract: higher
    formants), keeping pitch, phase and length."""
    x = np.asarray(x, dtype=np.float64)
    if abs(factor - 1.0) < 1e-6 or len(x) == 0:
        return x.astype(np.float32)
    nfft = 1 << int(np.ceil(np.log2(0.04 * rate)))
    _, _, spec = stft(x, nperseg=nfft, noverlap=3 * nfft // 4, boundary="even", padded=True)
    mag = np.abs(spec) + 1e-7
    ceps = np.fft.irfft(np.log(mag), axis=0)
    cut = max(2, int(ENVELOPE_QUEFRENCY * rate))
    ceps[cut:-cut + 1] = 0.0
    env = np.fft.rfft(ceps, axis=0).real  # log envelope, [bins, frames]
    bins = np.arange(env.shape[0], dtype=np.float64)
    src = np.clip(bins / factor, 0, env.shape[0] - 1)  # the envelope at f/factor moves to f
    lo = np.floor(src).astype(int)
    hi = np.minimum(lo + 1, env.shape[0] - 1)
    frac = (src - lo)[:, None]
    warped = env[lo] * (1 - frac) + env[hi] * frac
    gain = np.exp(np.clip(warped - env, -np.log(MAX_GAIN), np.log(MAX_GAIN)))
    _, y = istft(spec * gain, nperseg=nfft, noverlap=3 * nfft // 4, boundary=True)
    y = _fit(y, len(x)) * np.sqrt(np.mean(x ** 2) / max(float(np.mean(y ** 2)), 1e-12))  # same loudness
    peak = float(np.abs(y).max())
    return (y * (0.99 / peak if peak > 0.99 else 1.0)).astype(np.float32)


def shift_voice(x: np.ndarray, rate: int, pitch: float = 1.0, formant: float = 1.0) -> np.ndarray:
    """The same speech with F0 × `pitch` and formants × `formant`, same length."""
    n = len(x)
    y = np.asarray(x, dtype=np.float32)
    if abs(pitch - 1.0) >= 1e-6:
        ratio = Fraction(pitch).limit_denominator(200)
        faster = resample(y, ratio.numerator, ratio.denominator)  # n / pitch samples
        y = _fit(wsola(faster, n / max(len(faster), 1), rate), n)
    return _fit(warp_formants(y, rate, formant / pitch), n)


def perturb_speech(speech: Speech, pitch: float = 1.0, formant: float = 1.0, tempo: float = 1.0,
                   voice: str | None = None) -> Speech:
    """`speech` spoken higher/lower (`pitch`), by a shorter/longer vocal tract (`formant`)
    and faster (`tempo` > 1) or slower; timings scale with the length, so they still tile
    the audio."""
    rate = speech.audio.sample_rate
    y = shift_voice(speech.audio.samples, rate, pitch, formant)
    n_in = len(y)
    if abs(tempo - 1.0) >= 1e-6:
        y = wsola(y, 1.0 / tempo, rate)
    scale = len(y) / max(n_in, 1)
    return Speech(AudioClip(y.astype(np.float32), rate), _scaled(speech.phonemes, scale), speech.text,
                  speech.lang, voice or speech.voice, sentence=speech.sentence,
                  syllables=_scaled(speech.syllables, scale))


def _scaled(timings: list[PhonemeTiming], scale: float) -> list[PhonemeTiming]:
    return [PhonemeTiming(t.phoneme, t.start * scale, t.end * scale) for t in timings]
