"""Fixed (parameter-free) input encodings: spherical harmonics and frequencies."""

from __future__ import annotations

import torch
from torch import Tensor, nn


class SHEncoding(nn.Module):
    """Real spherical harmonics of a unit direction up to degree 4 (16 outputs), in
    instant-ngp / torch-ngp's order and sign convention, so colour MLPs trained
    against that encoding read the same features."""

    output_dim = 16

    def forward(self, d: Tensor) -> Tensor:
        x, y, z = d[..., 0], d[..., 1], d[..., 2]
        xy, yz, xz = x * y, y * z, x * z
        x2, y2, z2 = x * x, y * y, z * z
        return torch.stack(
            [
                torch.full_like(x, 0.28209479177387814),
                -0.48860251190291987 * y,
                0.48860251190291987 * z,
                -0.48860251190291987 * x,
                1.0925484305920792 * xy,
                -1.0925484305920792 * yz,
                0.94617469575755997 * z2 - 0.31539156525251999,
                -1.0925484305920792 * xz,
                0.54627421529603959 * x2 - 0.54627421529603959 * y2,
                0.59004358992664352 * y * (-3.0 * x2 + y2),
                2.8906114426405538 * xy * z,
                0.45704579946446572 * y * (1.0 - 5.0 * z2),
                0.3731763325901154 * z * (5.0 * z2 - 3.0),
                0.45704579946446572 * x * (1.0 - 5.0 * z2),
                1.4453057213202769 * z * (x2 - y2),
                0.59004358992664352 * x * (-x2 + 3.0 * y2),
            ],
            dim=-1,
        )


class FrequencyEncoding(nn.Module):
    """NeRF positional encoding [x, sin(2^0 x), cos(2^0 x), ..., sin(2^(n-1) x), cos(...)]
    (torch-ngp `FreqEncoder` with log sampling and the input included)."""

    def __init__(self, input_dim: int, num_freqs: int, include_input: bool = True) -> None:
        super().__init__()
        self.input_dim = input_dim
        self.num_freqs = num_freqs
        self.include_input = include_input
        self.register_buffer("freqs", 2.0 ** torch.arange(num_freqs, dtype=torch.float32), persistent=False)

    @property
    def output_dim(self) -> int:
        return self.input_dim * (int(self.include_input) + 2 * self.num_freqs)

    def forward(self, x: Tensor) -> Tensor:
        xf = x[..., None, :] * self.freqs.to(x.dtype)[:, None]  # [..., F, D]
        # per frequency: sin of every axis, then cos of every axis
        sc = torch.stack([torch.sin(xf), torch.cos(xf)], dim=-2).flatten(-3)
        return torch.cat([x, sc], dim=-1) if self.include_input else sc
