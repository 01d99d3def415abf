"""Speech-enhancement metrics: SI-SDR, segmental SNR, STOI, PESQ-wb, MCD and WSS.

All take (reference, estimate) as equally long mono float arrays at one sample rate.
SI-SDR, SNRseg, MCD and WSS are implemented here (numpy); STOI comes from pystoi and
PESQ (ITU-T P.862.2 wide band, 16 kHz) from pesq, both in the `eval` extra. SNRseg and
WSS follow the definitions used by Loizou's toolbox / pysepm (30 ms frames, 75 % overlap).
"""

from __future__ import annotations

import numpy as np
from scipy.fft import dct

from services.common.audio import resample
from services.common.extras import optional_import

_EPS = np.finfo(np.float64).eps


def _pair(ref: np.ndarray, est: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    ref, est = np.asarray(ref, np.float64).ravel(), np.asarray(est, np.float64).ravel()
    if len(ref) != len(est):
        raise ValueError(f"reference and estimate differ in length: {len(ref)} vs {len(est)}")
    if len(ref) == 0:
        raise ValueError("empty signals")
    return ref, est


def si_sdr(ref: np.ndarray, est: np.ndarray) -> float:
    """Scale-invariant SDR in dB (Le Roux et al., 2019), both signals mean-removed."""
    ref, est = _pair(ref, est)
    ref, est = ref - ref.mean(), est - est.mean()
    target = (est @ ref) / (ref @ ref + _EPS) * ref
    return float(10 * np.log10((target @ target + _EPS) / ((est - target) @ (est - target) + _EPS)))


def _frames(x: np.ndarray, length: int, hop: int) -> np.ndarray:
    n = 1 + max(0, (len(x) - length) // hop)
    idx = np.arange(length)[None, :] + hop * np.arange(n)[:, None]
    return x[idx]


def seg_snr(ref: np.ndarray, est: np.ndarray, sample_rate: int, frame_s: float = 0.03,
            overlap: float = 0.75, lo: float = -10.0, hi: float = 35.0) -> float:
    """Mean over frames of 10·log10(Σref² / Σ(ref − est)²), each clipped to [lo, hi] dB."""
    ref, est = _pair(ref, est)
    length = int(round(frame_s * sample_rate))
    hop = int(np.floor(length * (1 - overlap)))
    win = np.hanning(length + 2)[1:-1]
    r, e = _frames(ref, length, hop) * win, _frames(est, length, hop) * win
    snr = 10 * np.log10((r ** 2).sum(1) / ((r - e) ** 2).sum(1).clip(_EPS) + _EPS)
    return float(np.clip(snr, lo, hi).mean())


def stoi(ref: np.ndarray, est: np.ndarray, sample_rate: int) -> float:
    pystoi = optional_import("pystoi", "eval")
    ref, est = _pair(ref, est)
    return float(pystoi.stoi(ref, est, sample_rate, extended=False))


def pesq_wb(ref: np.ndarray, est: np.ndarray, sample_rate: int) -> float:
    """Wide-band PESQ (MOS-LQO, 1.04…4.64); audio is resampled to 16 kHz first."""
    pesq = optional_import("pesq", "eval")
    ref, est = _pair(ref, est)
    if sample_rate != 16000:
        ref = resample(ref, sample_rate, 16000).astype(np.float64)
        est = resample(est, sample_rate, 16000).astype(np.float64)
    return float(pesq.pesq(16000, ref, est, "wb"))


def _mel_matrix(sample_rate: int, n_fft: int, n_mels: int) -> np.ndarray:
    def hz2mel(f):
        return 2595 * np.log10(1 + f / 700)

    pts = 700 * (10 ** (np.linspace(hz2mel(0), hz2mel(sample_rate / 2), n_mels + 2) / 2595) - 1)
    freqs = np.linspace(0, sample_rate / 2, n_fft // 2 + 1)
    fb = np.zeros((n_mels, len(freqs)))
    for m in range(n_mels):
        left, centre, right = pts[m:m + 3]
        fb[m] = np.clip(np.minimum((freqs - left) / (centre - left), (right - freqs) / (right - centre)), 0, None)
    return fb


def mel_cepstrum(x: np.ndarray, sample_rate: int, n_coeffs: int = 25, n_mels: int = 40) -> np.ndarray:
    """[frames, n_coeffs] cepstra (DCT-II of log mel power; 25 ms Hann, 10 ms hop)."""
    length, hop = int(0.025 * sample_rate), int(0.010 * sample_rate)
    n_fft = 1 << (length - 1).bit_length()
    spec = np.abs(np.fft.rfft(_frames(x, length, hop) * np.hanning(length), n_fft)) ** 2
    mel = spec @ _mel_matrix(sample_rate, n_fft, n_mels).T
    # true cepstrum scale (log|H(w)| = sum_d c_d cos(w d)) of the log amplitude, as SPTK mcep
    log_amp = 0.5 * np.log(mel + 1e-10)
    return dct(log_amp, type=2, norm=None, axis=1)[:, :n_coeffs] / n_mels


def mcd(ref: np.ndarray, est: np.ndarray, sample_rate: int) -> float:
    """Mel-cepstral distortion in dB: mean over speech frames of (10/ln10)·√(2·Σ_{d≥1}Δc_d²).

    c0 (energy) is excluded, so a pure gain change gives 0; frames more than 40 dB below
    the reference's loudest frame are skipped (silence says nothing about timbre).
    """
    ref, est = _pair(ref, est)
    cr, ce = mel_cepstrum(ref, sample_rate), mel_cepstrum(est, sample_rate)
    length, hop = int(0.025 * sample_rate), int(0.010 * sample_rate)
    energy = 10 * np.log10((_frames(ref, length, hop) ** 2).sum(1) + _EPS)
    keep = energy > energy.max() - 40
    diff = (cr - ce)[keep, 1:]
    return float(np.mean(10 / np.log(10) * np.sqrt(2 * (diff ** 2).sum(1))))


def _critical_bands() -> tuple[np.ndarray, np.ndarray]:
    """Klatt's 25 critical bands (Hz centres/bandwidths at 16 kHz), Gaussian-shaped."""
    cent = np.array([50, 120, 190, 260, 330, 400, 470, 540, 617.372, 703.378, 798.717, 904.128,
                     1020.38, 1148.30, 1288.72, 1442.54, 1610.70, 1794.16, 2000.00, 2225.41,
                     2471.67, 2737.79, 3031.09, 3350.75, 3699.13])
    bw = np.array([70, 70, 70, 70, 70, 70, 70, 77.3724, 86.0056, 95.3398, 105.411, 116.256,
                   127.914, 140.423, 153.823, 168.154, 183.457, 199.776, 217.153, 235.631,
                   255.255, 276.072, 298.126, 321.465, 346.136])
    return cent, bw


def wss(ref: np.ndarray, est: np.ndarray, sample_rate: int) -> float:
    """Weighted spectral slope distance (Klatt 1982) as in Loizou's toolbox (lower is better).

    30 ms Hann frames, 75 % overlap, 25 critical bands, Kmax = 20, Klocmax = 1; the mean
    over the 95 % best frames.
    """
    ref, est = _pair(ref, est)
    if sample_rate != 16000:
        ref, est = resample(ref, sample_rate, 16000), resample(est, sample_rate, 16000)
        sample_rate = 16000
    length = int(round(0.03 * sample_rate))
    hop = length // 4
    n_fft = 2 * (1 << (length - 1).bit_length())
    win = 0.5 * (1 - np.cos(2 * np.pi * np.arange(1, length + 1) / (length + 1)))
    cent, bw = _critical_bands()
    freqs = np.arange(n_fft // 2) * sample_rate / n_fft
    bw_min = bw[0]
    filt = np.exp(-11 * (((freqs[None, :] - cent[:, None]) / bw[:, None]) ** 2) + np.log(bw_min / bw)[:, None])
    filt[filt < np.exp(-30 / (2 * 2.303))] = 0.0  # Loizou's 30 dB floor

    def band_energies(x):
        spec = np.abs(np.fft.fft(_frames(x, length, hop) * win, n_fft)[:, :n_fft // 2]) ** 2
        return 10 * np.log10(np.maximum(spec @ filt.T, 1e-10))

    er, ee = band_energies(ref), band_energies(est)
    sr_, se = np.diff(er, axis=1), np.diff(ee, axis=1)

    def nearest_peaks(energy, slope):
        """For each band, the energy of the spectral peak its slope leads to."""
        nb = energy.shape[1]
        out = np.empty((energy.shape[0], nb - 1))
        for f in range(energy.shape[0]):
            for i in range(nb - 1):
                n = i
                if slope[f, i] > 0:  # rising: walk up-band to the maximum
                    while n < nb - 1 and slope[f, n] > 0:
                        n += 1
                    out[f, i] = energy[f, n]
                else:  # falling: walk down-band to the maximum
                    while n >= 0 and slope[f, n] <= 0:
                        n -= 1
                    out[f, i] = energy[f, n + 1]
        return out

    pr, pe = nearest_peaks(er, sr_), nearest_peaks(ee, se)
    kmax, klocmax = 20.0, 1.0
    dbmax_r, dbmax_e = er.max(1, keepdims=True), ee.max(1, keepdims=True)
    wr = kmax / (kmax + dbmax_r - er[:, :-1]) * klocmax / (klocmax + pr - er[:, :-1])
    we = kmax / (kmax + dbmax_e - ee[:, :-1]) * klocmax / (klocmax + pe - ee[:, :-1])
    w = (wr + we) / 2
    dist = (w * (sr_ - se) ** 2).sum(1) / w.sum(1)
    dist = np.sort(dist)[:int(round(len(dist) * 0.95))]
    return float(dist.mean())


def all_metrics(ref: np.ndarray, est: np.ndarray, sample_rate: int) -> dict[str, float]:
    return {"si_sdr": si_sdr(ref, est), "seg_snr": seg_snr(ref, est, sample_rate),
            "stoi": stoi(ref, est, sample_rate), "pesq_wb": pesq_wb(ref, est, sample_rate),
            "mcd": mcd(ref, est, sample_rate), "wss": wss(ref, est, sample_rate)}
