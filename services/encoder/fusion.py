"""Content-path window encoder and the cross-attention fusion blocks of CSFM.

All attention here runs along the video-frame axis inside a band of ±radius frames, so
a code depends only on nearby audio (streamable, length-independent).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from services.encoder.layers import LEAKY_SLOPE


class ContentWindowNet(nn.Module):
    """AudioNet (ER-NeRF): [N, 16, C] content windows → [N, out_dim].

    Four Conv1d(k3, s2, p1) along the window (C→32→32→64→64, LeakyReLU 0.02) squeeze the
    16 frames to one, then Linear 64→64→out_dim.
    """

    def __init__(self, in_dim: int, out_dim: int) -> None:
        super().__init__()
        chans = (in_dim, 32, 32, 64, 64)
        layers: list[nn.Module] = []
        for a, b in zip(chans[:-1], chans[1:]):
            layers += [nn.Conv1d(a, b, 3, stride=2, padding=1), nn.LeakyReLU(LEAKY_SLOPE)]
        self.conv = nn.Sequential(*layers)
        self.fc = nn.Sequential(nn.Linear(64, 64), nn.LeakyReLU(LEAKY_SLOPE), nn.Linear(64, out_dim))

    def forward(self, windows: torch.Tensor) -> torch.Tensor:
        h = self.conv(windows.transpose(1, 2))  # [N, 64, 1]
        return self.fc(h.mean(-1))


def band_mask(n: int, radius: int, device: torch.device) -> torch.Tensor:
    """Boolean [n, n] mask, True where attention is NOT allowed (|i − j| > radius)."""
    pos = torch.arange(n, device=device)
    return (pos[:, None] - pos[None, :]).abs() > radius


class CrossAttention(nn.Module):
    """out = residual + MHA(LN(query), LN(key), LN(value)) along the frame axis."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.norm_q, self.norm_k, self.norm_v = nn.LayerNorm(dim), nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.attn = nn.MultiheadAttention(dim, heads, batch_first=True)

    def forward(self, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, residual: torch.Tensor,
                mask: torch.Tensor) -> torch.Tensor:
        q, k, v = self.norm_q(query), self.norm_k(key), self.norm_v(value)
        out, _ = self.attn(q[None], k[None], v[None], attn_mask=mask, need_weights=False)
        return residual + out[0]


class SelfRefinement(nn.Module):
    """Pre-norm transformer block: x + SelfAttn(LN x), then + FeedForward(LN x)."""

    def __init__(self, dim: int, heads: int, ff_mult: int = 2) -> None:
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.attn = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.ff = nn.Sequential(nn.Linear(dim, ff_mult * dim), nn.GELU(), nn.Linear(ff_mult * dim, dim))

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        h = self.norm1(x)[None]
        x = x + self.attn(h, h, h, attn_mask=mask, need_weights=False)[0][0]
        return x + self.ff(self.norm2(x))


class CSFM(nn.Module):
    """Cross-attention fusion of content c and dynamic d features, both [N, dim] → [N, 2·dim].

    full=True (CSFM):  s_c = c + Attn(q=c, k=c, v=d);  s_d = d + Attn(q=d, k=d, v=c);
                        each sum refined by self-attention + feed-forward.
    full=False (plain cross-attention, the ablation):  c + Attn(q=c, k=d, v=d),
                        d + Attn(q=d, k=c, v=c), no refinement.
    """

    def __init__(self, dim: int, heads: int, radius: int, full: bool = True) -> None:
        super().__init__()
        self.full, self.radius = full, radius
        self.cross_c = CrossAttention(dim, heads)
        self.cross_d = CrossAttention(dim, heads)
        if full:
            self.refine_c = SelfRefinement(dim, heads)
            self.refine_d = SelfRefinement(dim, heads)

    @property
    def context_frames(self) -> int:
        return self.radius * (2 if self.full else 1)

    def forward(self, c: torch.Tensor, d: torch.Tensor) -> torch.Tensor:
        mask = band_mask(c.shape[0], self.radius, c.device)
        if self.full:
            s_c = self.refine_c(self.cross_c(c, c, d, c, mask), mask)
            s_d = self.refine_d(self.cross_d(d, d, c, d, mask), mask)
        else:
            s_c = self.cross_c(c, d, d, c, mask)
            s_d = self.cross_d(d, c, c, d, mask)
        return torch.cat([s_c, s_d], dim=-1)


def leaky(x: torch.Tensor) -> torch.Tensor:
    return F.leaky_relu(x, LEAKY_SLOPE)
