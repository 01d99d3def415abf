"""Training losses that are not one-liners: SSIM on patches, alpha entropy."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def _gaussian_window(size: int, sigma: float, device: torch.device) -> Tensor:
    x = torch.arange(size, dtype=torch.float32, device=device) - (size - 1) / 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    g = g / g.sum()
    return (g[:, None] * g[None, :])[None, None]


def ssim(a: Tensor, b: Tensor, window: int = 7, sigma: float = 1.5) -> Tensor:
    """Mean SSIM of two image batches [B, 3, H, W] in [0, 1] (valid region, Gaussian window)."""
    c1, c2 = 0.01**2, 0.03**2
    w = _gaussian_window(window, sigma, a.device).expand(a.shape[1], 1, window, window)

    def filt(x: Tensor) -> Tensor:
        return F.conv2d(x, w, groups=a.shape[1])

    mu_a, mu_b = filt(a), filt(b)
    var_a = filt(a * a) - mu_a**2
    var_b = filt(b * b) - mu_b**2
    cov = filt(a * b) - mu_a * mu_b
    num = (2 * mu_a * mu_b + c1) * (2 * cov + c2)
    den = (mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2)
    return (num / den).mean()


def alpha_entropy(alpha: Tensor, eps: float = 1e-5) -> Tensor:
    """Binary entropy of accumulated opacity: pushes each ray to fully hit or fully miss."""
    a = alpha.clamp(eps, 1 - eps)
    return -(a * torch.log(a) + (1 - a) * torch.log(1 - a)).mean()


def psnr(mse: float) -> float:
    import math

    return float("inf") if mse <= 0 else -10.0 * math.log10(mse)
