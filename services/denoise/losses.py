"""MP-SENet training losses (magnitude, anti-wrapped phase, complex, STFT consistency, time).

The metric discriminator of MP-SENet is left out (too costly to train on CPU); a small
negative-SI-SDR term stands in for a metric-aware objective.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch.nn import functional as F


@dataclass(frozen=True)
class LossWeights:
    magnitude: float = 0.9
    phase: float = 0.3
    complex: float = 0.1
    consistency: float = 0.1
    time: float = 0.2
    si_sdr: float = 0.01


def anti_wrap(x: torch.Tensor) -> torch.Tensor:
    """|x − 2π·round(x / 2π)|: distance between angles, immune to 2π wrapping."""
    return (x - 2 * math.pi * torch.round(x / (2 * math.pi))).abs()


def phase_losses(clean: torch.Tensor, est: torch.Tensor) -> torch.Tensor:
    """Instantaneous phase + group delay (d/df) + instantaneous frequency (d/dt), [B, F, T]."""
    ip = anti_wrap(clean - est).mean()
    gd = anti_wrap(torch.diff(clean, dim=1) - torch.diff(est, dim=1)).mean()
    iaf = anti_wrap(torch.diff(clean, dim=2) - torch.diff(est, dim=2)).mean()
    return ip + gd + iaf


def neg_si_sdr(ref: torch.Tensor, est: torch.Tensor) -> torch.Tensor:
    ref = ref - ref.mean(-1, keepdim=True)
    est = est - est.mean(-1, keepdim=True)
    proj = (est * ref).sum(-1, keepdim=True) / (ref.pow(2).sum(-1, keepdim=True) + 1e-8) * ref
    ratio = proj.pow(2).sum(-1) / ((est - proj).pow(2).sum(-1) + 1e-8)
    return -(10 * torch.log10(ratio + 1e-8)).mean()


def enhancement_loss(model: torch.nn.Module, noisy: torch.Tensor, clean: torch.Tensor,
                     w: LossWeights = LossWeights(), level_jitter: float = 0.0
                     ) -> tuple[torch.Tensor, dict[str, float]]:
    """Total loss and its parts for a batch of (noisy, clean) waves [B, N] at 16 kHz.

    Both are scaled by the gain that brings the noisy input to unit RMS, as at inference,
    times a random factor in 2^[−level_jitter, level_jitter]: long files and streams are
    normalised once for many seconds, so a window's level is never exactly 1.
    """
    gain = noisy.pow(2).mean(-1, keepdim=True).add(1e-10).rsqrt()
    if level_jitter:
        gain = gain * 2 ** ((torch.rand_like(gain) * 2 - 1) * level_jitter)
    noisy, clean = noisy * gain, clean * gain
    stft = model.stft
    n_mag, n_pha, _ = stft.analyse(noisy)
    c_mag, c_pha, c_com = stft.analyse(clean)
    e_mag, e_pha, e_com = model(n_mag, n_pha)
    wave = stft.synthesise(e_mag, e_pha, noisy.shape[-1])
    _, _, r_com = stft.analyse(wave)
    parts = {
        "magnitude": F.mse_loss(e_mag, c_mag),
        "phase": phase_losses(c_pha, e_pha),
        "complex": 2 * F.mse_loss(e_com, c_com),
        "consistency": 2 * F.mse_loss(r_com, e_com),
        "time": F.l1_loss(wave, clean),
        "si_sdr": neg_si_sdr(clean, wave),
    }
    total = sum(getattr(w, k) * v for k, v in parts.items())
    return total, {k: float(v.detach()) for k, v in parts.items()}
