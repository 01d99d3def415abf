"""A Zipformer layer (Yao et al., 2023) as ZipEnhancer uses it, in plain PyTorch.

One layer: FF → attention weights (computed once, reused) → non-linear attention →
self-attention → conv → FF → self-attention → conv → FF → BiasNorm → Bypass with the
layer input. Activations are SwooshL/SwooshR. Sequences are [N, L, C] (batch, length,
channels); the dual-path stacks in zipenhancer.py fold the other axis into N.

An optional attention window (±frames) keeps the receptive field along time bounded,
so chunked processing of long audio equals whole-file processing away from the seams.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F


def swoosh_l(x: torch.Tensor) -> torch.Tensor:
    return F.softplus(x - 4.0) - 0.08 * x - 0.035


def swoosh_r(x: torch.Tensor) -> torch.Tensor:
    return F.softplus(x - 1.0) - 0.08 * x - 0.313261687


class BiasNorm(nn.Module):
    """x / rms(x − b) · exp(γ): Zipformer's LayerNorm replacement (keeps length information)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(channels))
        self.log_scale = nn.Parameter(torch.zeros(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = (x - self.bias).pow(2).mean(-1, keepdim=True).add(1e-8).rsqrt()
        return x * scale * self.log_scale.exp()


class Bypass(nn.Module):
    """out = x + c ⊙ (y − x) with a learnable per-channel c, initialised to 0.5."""

    def __init__(self, channels: int, init: float = 0.5) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.full((channels,), init))

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return x + self.scale * (y - x)


class FeedForward(nn.Module):
    def __init__(self, channels: int, hidden: int) -> None:
        super().__init__()
        self.inp = nn.Linear(channels, hidden)
        self.out = nn.Linear(hidden, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(swoosh_l(self.inp(x)))


class LocalWeights:
    """Banded attention weights stored by blocks: queries in block b (of size W) see keys in
    blocks b−1, b, b+1 with |i − j| ≤ W. Memory O(L·3W) instead of O(L²)."""

    def __init__(self, weights: torch.Tensor, length: int, window: int) -> None:
        self.weights, self.length, self.window = weights, length, window  # [N, H, nb, W, 3W]


def _neighbour_blocks(x: torch.Tensor, block: int) -> torch.Tensor:
    """[N, H, L, d] (L a multiple of block) → [N, H, nb, 3·block, d]: blocks b−1, b, b+1."""
    n, h, length, d = x.shape
    xb = x.view(n, h, length // block, block, d)
    pad = xb.new_zeros(n, h, 1, block, d)
    return torch.cat([torch.cat([pad, xb[:, :, :-1]], 2), xb, torch.cat([xb[:, :, 1:], pad], 2)], 3)


def _band_mask(length: int, padded: int, block: int, device: torch.device) -> torch.Tensor:
    """True where a (query, key) pair of the blocked layout must not attend."""
    nb = padded // block
    b = torch.arange(nb, device=device)[:, None, None]
    r = torch.arange(block, device=device)[None, :, None]
    c = torch.arange(3 * block, device=device)[None, None, :]
    key = (b - 1) * block + c
    return ((block + r - c).abs() > block) | (key < 0) | (key >= length)


class AttentionWeights(nn.Module):
    """Multi-head attention weights, shared by the modules that use them: dense
    [N·H, L, L], or banded `LocalWeights` when a window is set and the sequence is long."""

    def __init__(self, channels: int, heads: int, head_dim: int) -> None:
        super().__init__()
        self.heads, self.head_dim = heads, head_dim
        self.qk = nn.Linear(channels, 2 * heads * head_dim)

    def forward(self, x: torch.Tensor, window: int | None) -> torch.Tensor | LocalWeights:
        n, length, _ = x.shape
        q, k = self.qk(x).view(n, length, 2, self.heads, self.head_dim).permute(2, 0, 3, 1, 4)
        if window is None or length <= window + 1:  # every pair within reach: dense
            scores = (q @ k.transpose(-1, -2)) / math.sqrt(self.head_dim)
            return scores.softmax(-1).reshape(n * self.heads, length, length)
        padded = -(-length // window) * window
        if padded != length:
            q = F.pad(q, (0, 0, 0, padded - length))
            k = F.pad(k, (0, 0, 0, padded - length))
        qb = q.view(n, self.heads, padded // window, window, self.head_dim)
        scores = (qb @ _neighbour_blocks(k, window).transpose(-1, -2)) / math.sqrt(self.head_dim)
        scores = scores.masked_fill(_band_mask(length, padded, window, x.device), float("-inf"))
        return LocalWeights(scores.softmax(-1), length, window)


def _apply_heads(weights: torch.Tensor | LocalWeights, v: torch.Tensor, heads: int) -> torch.Tensor:
    """Attention weights applied to v [N, L, H·d] → [N, L, H·d]."""
    n, length, hd = v.shape
    vh = v.view(n, length, heads, hd // heads).transpose(1, 2)  # [N, H, L, d]
    if isinstance(weights, LocalWeights):
        w = weights.window
        padded = -(-length // w) * w
        vh = F.pad(vh, (0, 0, 0, padded - length))
        out = (weights.weights @ _neighbour_blocks(vh, w)).reshape(n, heads, padded, hd // heads)
        return out[:, :, :length].transpose(1, 2).reshape(n, length, hd)
    out = weights @ vh.reshape(n * heads, length, hd // heads)
    return out.view(n, heads, length, hd // heads).transpose(1, 2).reshape(n, length, hd)


class SelfAttention(nn.Module):
    def __init__(self, channels: int, heads: int, value_dim: int) -> None:
        super().__init__()
        self.heads = heads
        self.v = nn.Linear(channels, heads * value_dim)
        self.out = nn.Linear(heads * value_dim, channels)

    def forward(self, x: torch.Tensor, weights: torch.Tensor | LocalWeights) -> torch.Tensor:
        return self.out(_apply_heads(weights, self.v(x), self.heads))


class NonLinearAttention(nn.Module):
    """tanh-gated values, attended with the shared weights, then gated again (Zipformer NLA)."""

    def __init__(self, channels: int, heads: int, hidden: int) -> None:
        super().__init__()
        self.heads = heads
        hidden = hidden // heads * heads
        self.inp = nn.Linear(channels, 3 * hidden)
        self.out = nn.Linear(hidden, channels)

    def forward(self, x: torch.Tensor, weights: torch.Tensor | LocalWeights) -> torch.Tensor:
        s, v, g = self.inp(x).chunk(3, -1)
        v = _apply_heads(weights, torch.tanh(s) * v, self.heads)
        return self.out(v * g)


class ConvModule(nn.Module):
    """pointwise → GLU-like gate → depthwise conv (kernel k) → SwooshR → pointwise."""

    def __init__(self, channels: int, kernel: int) -> None:
        super().__init__()
        self.inp = nn.Linear(channels, 2 * channels)
        self.depthwise = nn.Conv1d(channels, channels, kernel, padding=kernel // 2, groups=channels)
        self.out = nn.Linear(channels, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, b = self.inp(x).chunk(2, -1)
        y = (a * torch.sigmoid(b)).transpose(1, 2)
        y = swoosh_r(self.depthwise(y)).transpose(1, 2)
        return self.out(y)


class ZipformerLayer(nn.Module):
    def __init__(self, channels: int, heads: int, ff: int, kernel: int,
                 attn_window: int | None = None) -> None:
        super().__init__()
        head_dim = max(8, channels // heads // 2)
        self.attn_window = attn_window
        self.ff1 = FeedForward(channels, ff * 3 // 4)
        self.ff2 = FeedForward(channels, ff)
        self.ff3 = FeedForward(channels, ff * 5 // 4)
        self.weights = AttentionWeights(channels, heads, head_dim * 2)
        self.nla = NonLinearAttention(channels, heads, channels * 3 // 4)
        self.sa1 = SelfAttention(channels, heads, head_dim)
        self.sa2 = SelfAttention(channels, heads, head_dim)
        self.conv1 = ConvModule(channels, kernel)
        self.conv2 = ConvModule(channels, kernel)
        self.norm = BiasNorm(channels)
        self.bypass = Bypass(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        orig = x
        x = x + self.ff1(x)
        w = self.weights(x, self.attn_window)
        x = x + self.nla(x, w)
        x = x + self.sa1(x, w)
        x = x + self.conv1(x)
        x = x + self.ff2(x)
        x = x + self.sa2(x, w)
        x = x + self.conv2(x)
        x = x + self.ff3(x)
        return self.bypass(orig, self.norm(x))
