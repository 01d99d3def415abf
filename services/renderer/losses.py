"""Image losses and metrics that are not one-liners: SSIM (training patches and evaluated
frames), alpha entropy, PSNR."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor


def _window_1d(size: int, sigma: float | None, like: Tensor) -> Tensor:
    """Normalised 1-D taps: Gaussian of `sigma`, or uniform when `sigma` is None."""
    x = torch.arange(size, dtype=like.dtype, device=like.device) - (size - 1) / 2
    g = torch.ones_like(x) if sigma is None else torch.exp(-(x**2) / (2 * sigma**2))
    return g / g.sum()


def ssim(a: Tensor, b: Tensor, window: int = 7, sigma: float | None = 1.5,
         sample_covariance: bool = False) -> Tensor:
    """Mean SSIM of two image batches [B, C, H, W] in [0, 1] over the valid region.

    `sigma` weights the window with a Gaussian, None with a uniform one (both separable).
    `sample_covariance` scales (co)variances by N/(N-1), N = window². scikit-image's SSIM
    defaults (with `data_range=1`) are `sigma=None, sample_covariance=True`.
    """
    c1, c2 = 0.01**2, 0.03**2
    g = _window_1d(window, sigma, a)
    rows = g.view(1, 1, 1, window).expand(a.shape[1], 1, 1, window)
    cols = g.view(1, 1, window, 1).expand(a.shape[1], 1, window, 1)

    def filt(x: Tensor) -> Tensor:
        return F.conv2d(F.conv2d(x, rows, groups=a.shape[1]), cols, groups=a.shape[1])

    norm = window**2 / (window**2 - 1) if sample_covariance else 1.0
    mu_a, mu_b = filt(a), filt(b)
    var_a = norm * (filt(a * a) - mu_a**2)
    var_b = norm * (filt(b * b) - mu_b**2)
    cov = norm * (filt(a * b) - mu_a * mu_b)
    num = (2 * mu_a * mu_b + c1) * (2 * cov + c2)
    den = (mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2)
    return (num / den).mean()


def frames_ssim(rendered: np.ndarray, truth: np.ndarray) -> float:
    """Mean over frames of the SSIM of uint8 RGB frame stacks [T, H, W, 3], in float64 with a
    uniform 7×7 window and sample covariance: the renderer eval's `ssim` (scikit-image's
    per-channel SSIM definition, so BENCHMARKS' figures keep their meaning)."""
    if rendered.shape != truth.shape or rendered.ndim != 4:
        raise ValueError(f"frame stacks must both be [T, H, W, C]: {rendered.shape} vs {truth.shape}")

    def chw(frame: np.ndarray) -> Tensor:
        return torch.from_numpy(np.ascontiguousarray(frame.transpose(2, 0, 1), np.float64) / 255)[None]

    with torch.no_grad():
        return float(np.mean([float(ssim(chw(r), chw(t), sigma=None, sample_covariance=True))
                              for r, t in zip(rendered, truth)]))


def alpha_entropy(alpha: Tensor, eps: float = 1e-5) -> Tensor:
    """Binary entropy of accumulated opacity: pushes each ray to fully hit or fully miss."""
    a = alpha.clamp(eps, 1 - eps)
    return -(a * torch.log(a) + (1 - a) * torch.log(1 - a)).mean()


def psnr(mse: float) -> float:
    import math

    return float("inf") if mse <= 0 else -10.0 * math.log10(mse)
