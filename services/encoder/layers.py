"""Building blocks shared by every audio encoder variant (pure PyTorch, no I/O).

- FCResBlock / fc_res_stack: the RAE-NeRF residual MLP 512→256→128→64.
- TemporalAttention: AudioAttNet-style smoothing of per-frame codes over ±4 frames.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

#: Negative slope of every LeakyReLU in the audio path (AudioNet / AudioAttNet use 0.02).
LEAKY_SLOPE = 0.02


class FCResBlock(nn.Module):
    """Linear → LeakyReLU → Linear, plus the input (projected when sizes differ), → LeakyReLU."""

    def __init__(self, in_dim: int, out_dim: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(in_dim, out_dim)
        self.fc2 = nn.Linear(out_dim, out_dim)
        # A bias-free projection keeps the skip a pure change of basis.
        self.skip: nn.Module = nn.Identity() if in_dim == out_dim else nn.Linear(in_dim, out_dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.fc2(F.leaky_relu(self.fc1(x), LEAKY_SLOPE))
        return F.leaky_relu(h + self.skip(x), LEAKY_SLOPE)


def fc_res_stack(dims: tuple[int, ...] = (512, 256, 128, 64)) -> nn.Sequential:
    """FCResBlocks between consecutive sizes, e.g. 512→256→128→64."""
    return nn.Sequential(*(FCResBlock(a, b) for a, b in zip(dims[:-1], dims[1:])))


class TemporalAttention(nn.Module):
    """AudioAttNet: weights over the 2·radius+1 neighbouring codes, softmax, weighted sum.

    A Conv1d stack over time (channels dim→16→8→4→2→1) scores each neighbour, a
    Linear(window, window) mixes the scores, and softmax makes them sum to 1. Clip edges
    repeat the first/last code, so every frame sees a full window.
    """

    def __init__(self, dim: int = 64, radius: int = 4) -> None:
        super().__init__()
        self.radius = radius
        self.window = 2 * radius + 1
        chans = (dim, 16, 8, 4, 2, 1)
        layers: list[nn.Module] = []
        for a, b in zip(chans[:-1], chans[1:]):
            layers += [nn.Conv1d(a, b, 3, padding=1), nn.LeakyReLU(LEAKY_SLOPE)]
        self.scorer = nn.Sequential(*layers)
        self.mix = nn.Linear(self.window, self.window)

    def neighbourhoods(self, codes: torch.Tensor) -> torch.Tensor:
        """[N, D] → [N, window, D] with edge replication."""
        n = codes.shape[0]
        idx = torch.arange(n, device=codes.device)[:, None] + torch.arange(
            -self.radius, self.radius + 1, device=codes.device)[None, :]
        return codes[idx.clamp(0, n - 1)]

    def weights(self, codes: torch.Tensor) -> torch.Tensor:
        """Attention weights [N, window] (each row sums to 1) for codes [N, D]."""
        win = self.neighbourhoods(codes)                    # [N, W, D]
        scores = self.scorer(win.transpose(1, 2)).squeeze(1)  # [N, W]
        return torch.softmax(self.mix(scores), dim=-1)

    def forward(self, codes: torch.Tensor) -> torch.Tensor:
        w = self.weights(codes)
        return torch.einsum("nw,nwd->nd", w, self.neighbourhoods(codes))
