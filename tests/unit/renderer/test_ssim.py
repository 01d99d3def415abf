"""SSIM: the training loss (Gaussian window) and the eval's frame metric (uniform window,
sample covariance). The frame metric keeps the meaning of the recorded eval numbers:
scikit-image 0.26's `structural_similarity(a, b, channel_axis=2, data_range=255)` gave the
reference values below (and agreed to 1e-14 on random frames)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from services.renderer.losses import frames_ssim, ssim

YY, XX = np.mgrid[:40, :48]
RAMP = ((XX * 7 + YY * 13) % 256).astype(np.uint8)
HASHY = ((XX * YY * 31 + XX * 17) % 251).astype(np.uint8)
CHECKER = (((XX // 4 + YY // 4) % 2) * 255).astype(np.uint8)


def rgb(*channels: np.ndarray) -> np.ndarray:
    return np.stack(channels, -1)


@pytest.mark.parametrize(("a", "b", "expected"), [
    (rgb(RAMP, HASHY, CHECKER), rgb(HASHY, RAMP, CHECKER), 0.3436885132378977),
    (rgb(RAMP, RAMP, RAMP), rgb(*[np.roll(RAMP, 1, 1)] * 3), 0.8324932518186662),
    (rgb(CHECKER, CHECKER, CHECKER), np.full((40, 48, 3), 128, np.uint8), 0.00351483510166139),
])
def test_frames_ssim_matches_scikit_image(a, b, expected):
    assert frames_ssim(a[None], b[None]) == pytest.approx(expected, abs=1e-9)
    assert frames_ssim(b[None], a[None]) == pytest.approx(expected, abs=1e-9)


def test_frames_ssim_averages_frames():
    a, b = rgb(RAMP, HASHY, CHECKER), rgb(HASHY, RAMP, CHECKER)
    stack_a, stack_b = np.stack([a, a]), np.stack([a, b])
    assert frames_ssim(stack_a, stack_b) == pytest.approx((1 + 0.3436885132378977) / 2, abs=1e-9)


def test_frames_ssim_refuses_mismatched_stacks():
    with pytest.raises(ValueError, match="frame stacks"):
        frames_ssim(np.zeros((1, 8, 8, 3), np.uint8), np.zeros((1, 8, 9, 3), np.uint8))


@pytest.mark.parametrize("sigma", [1.5, None])
def test_identical_images_score_one(sigma):
    a = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    assert float(ssim(a, a, sigma=sigma)) == pytest.approx(1.0, abs=1e-6)


@pytest.mark.parametrize("sigma", [1.5, None])
def test_flat_images_score_their_luminance_term(sigma):
    # no variance: SSIM is (2·μa·μb + c1) / (μa² + μb² + c1) with c1 = 0.01²
    a = torch.full((1, 3, 12, 12), 0.25, dtype=torch.float64)
    b = torch.full((1, 3, 12, 12), 0.75, dtype=torch.float64)
    expected = (2 * 0.25 * 0.75 + 1e-4) / (0.25**2 + 0.75**2 + 1e-4)
    assert float(ssim(a, b, sigma=sigma)) == pytest.approx(expected, rel=1e-9)


def test_ssim_loss_has_gradients_and_falls_with_noise():
    g = torch.Generator().manual_seed(1)
    a = torch.rand(2, 3, 16, 16, generator=g)
    noise = torch.randn(2, 3, 16, 16, generator=g)
    b = (a + 0.3 * noise).clamp(0, 1).requires_grad_(True)
    (1 - ssim(a, b)).backward()
    assert b.grad is not None and torch.isfinite(b.grad).all() and b.grad.abs().sum() > 0
    assert float(ssim(a, (a + 0.3 * noise).clamp(0, 1))) < float(ssim(a, (a + 0.05 * noise).clamp(0, 1))) < 1
