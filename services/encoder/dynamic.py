"""Wav2Lip-style convolutional encoder of one 1×80×16 mel window → 512-d (REFERENCE.md §4)."""

from __future__ import annotations

import torch
from torch import nn


class ConvBlock(nn.Module):
    """Conv2d + norm + ReLU; residual blocks add their input before the ReLU (as Wav2Lip)."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int | tuple[int, int], padding: int,
                 residual: bool = False, norm: str = "batch") -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, stride, padding)
        # GroupNorm is offered because per-frame batches in a NeRF trainer can be tiny.
        self.norm = nn.BatchNorm2d(cout) if norm == "batch" else nn.GroupNorm(min(8, cout), cout)
        self.residual = residual

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.norm(self.conv(x))
        if self.residual:
            h = h + x
        return torch.relu(h)


class MelConvEncoder(nn.Module):
    """[B, 1, 80, 16] mel windows → [B, out_dim].

    With width=32 this is Wav2Lip's audio encoder (channels 32→64→128→256→512, strides
    1, (3,1), 3, (3,2), a 3×3 valid conv to 1×1, then 512→512 1×1; ≈2.8 M parameters).
    Smaller widths scale every channel count (width=16: ≈0.7 M, for CPU subjects).
    """

    def __init__(self, width: int = 32, out_dim: int = 512, norm: str = "batch") -> None:
        super().__init__()
        if norm not in ("batch", "group"):
            raise ValueError(f"norm must be 'batch' or 'group', got {norm!r}")
        c1, c2, c3, c4, c5 = width, 2 * width, 4 * width, 8 * width, 16 * width

        def block(cin: int, cout: int, k: int, s, p: int, res: bool = False) -> ConvBlock:
            return ConvBlock(cin, cout, k, s, p, res, norm)

        self.net = nn.Sequential(
            block(1, c1, 3, 1, 1), block(c1, c1, 3, 1, 1, True), block(c1, c1, 3, 1, 1, True),
            block(c1, c2, 3, (3, 1), 1), block(c2, c2, 3, 1, 1, True), block(c2, c2, 3, 1, 1, True),
            block(c2, c3, 3, 3, 1), block(c3, c3, 3, 1, 1, True), block(c3, c3, 3, 1, 1, True),
            block(c3, c4, 3, (3, 2), 1), block(c4, c4, 3, 1, 1, True),
            block(c4, c5, 3, 1, 0),        # 3×3 → 1×1
            block(c5, out_dim, 1, 1, 0),
        )
        self.out_dim = out_dim

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        if mel.shape[-3:] != (1, 80, 16):
            raise ValueError(f"mel windows must be [B, 1, 80, 16], got {tuple(mel.shape)}")
        return self.net(mel).flatten(1)
