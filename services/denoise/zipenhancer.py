"""ZipEnhancer (arXiv 2501.05183; REFERENCE.md §5): MP-SENet's magnitude/phase parallel
enhancer with its conformers replaced by dual-path Zipformer stacks.

    wave ─STFT→ |X|^0.3, ∠X ─► dense encoder (1×1 conv 2→C, dense block, freq stride 2)
         ─► dual-path stacks (Zipformer across frequency, then across time; the middle
            stacks downsample T and F by 2 with softmax-weighted pairs and upsample by
            repetition, each stack wrapped in a Bypass)
         ─► magnitude decoder → compressed clean magnitude
         ─► phase decoder → two 1×1 heads → atan2 ─iSTFT→ wave
    (each decoder: dense block, upsample to 201 bins, then ``refine`` residual blocks at
    full resolution: one in the small size, none in the paper's; `grow` adds them to
    trained weights)

Two choices differ from the paper and are switchable in the config (see MODEL_CARD.md):
``magnitude="mask"`` (MP-SENet's learnable-sigmoid mask on the noisy magnitude; the
paper's ZipEnhancer maps directly with a ReLU, ``"mapping"``) and ``phase="residual"``
(the heads correct the noisy phase vector instead of predicting it from scratch). Both
make a network trained for an hour on CPU leave clean speech untouched: at
initialisation both decoders pass the noisy input through exactly. Norms are
per-frame (over channels and frequency) instead of instance norm, and time attention
can be windowed, so that the output for a frame does not depend on far-away audio:
this is what lets long files be processed in chunks with the same result.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import asdict, dataclass, field

import torch
from torch import nn
from torch.nn import functional as F

from services.denoise.stft import CompressedStft, StftConfig
from services.denoise.zipformer import Bypass, ZipformerLayer


@dataclass(frozen=True)
class ZipEnhancerConfig:
    channels: int = 64
    heads: int = 4
    ff: int = 256
    kernel: int = 15
    #: time/frequency downsampling factor of each dual-path stack (paper: 1, 2, 2, 1)
    stacks: tuple[int, ...] = (1, 2, 2, 1)
    dense_depth: int = 4
    #: ±frames (at 160 frames/s before downsampling) that time attention sees; None = all
    attn_window: int | None = 80
    #: zero-initialised residual blocks at full frequency resolution in each decoder
    refine: int = 0
    magnitude: str = "mask"  # "mask" | "mapping"
    phase: str = "residual"  # "residual" | "direct"
    stft: StftConfig = field(default_factory=StftConfig)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    @classmethod
    def from_dict(cls, d: dict) -> "ZipEnhancerConfig":
        d = dict(d)
        d["stacks"] = tuple(d["stacks"])
        d["stft"] = StftConfig(**d.get("stft", {}))
        return cls(**d)


PAPER = ZipEnhancerConfig()
SMALL = ZipEnhancerConfig(channels=32, heads=4, ff=96, kernel=15, stacks=(2, 2), dense_depth=1, refine=1)


class FrameNorm(nn.Module):
    """Normalise each time frame over channels and frequency ([B, C, T, F]), per-channel affine.

    Unlike instance norm it uses no statistics across time, so chunks agree with the whole.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(1, channels, 1, 1))
        self.bias = nn.Parameter(torch.zeros(1, channels, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean = x.mean((1, 3), keepdim=True)
        var = (x - mean).pow(2).mean((1, 3), keepdim=True)
        return (x - mean) * (var + 1e-5).rsqrt() * self.weight + self.bias


def _conv_norm_act(conv: nn.Module, channels: int) -> nn.Sequential:
    return nn.Sequential(conv, FrameNorm(channels), nn.PReLU(channels))


class DenseBlock(nn.Module):
    """depth convs (kernel 2×3, time dilation 1, 2, 4, …, causal in time), each fed all
    previous outputs. A 2-tap dilated time kernel is written as a 1×3 conv over
    [x(t−d), x(t)] stacked on channels: the same function, without PyTorch's slow CPU
    path for dilated convolutions."""

    def __init__(self, channels: int, depth: int) -> None:
        super().__init__()
        self.dilations = [2 ** i for i in range(depth)]
        self.layers = nn.ModuleList(
            _conv_norm_act(nn.Conv2d(2 * channels * (i + 1), channels, (1, 3), padding=(0, 1)),
                           channels) for i in range(depth))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skip = x
        for dil, layer in zip(self.dilations, self.layers):
            past = F.pad(skip, (0, 0, dil, 0))[:, :, :skip.shape[2]]
            x = layer(torch.cat([past, skip], 1))
            skip = torch.cat([x, skip], 1)
        return x


class DenseEncoder(nn.Module):
    def __init__(self, cfg: ZipEnhancerConfig) -> None:
        super().__init__()
        c = cfg.channels
        self.inp = _conv_norm_act(nn.Conv2d(2, c, 1), c)
        self.dense = DenseBlock(c, cfg.dense_depth)
        self.down = _conv_norm_act(nn.Conv2d(c, c, (1, 3), stride=(1, 2), padding=(0, 1)), c)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down(self.dense(self.inp(x)))


class PairDownsample(nn.Module):
    """Downsample one axis by `factor` with softmax-weighted groups (Zipformer)."""

    def __init__(self, factor: int) -> None:
        super().__init__()
        self.factor = factor
        self.logits = nn.Parameter(torch.zeros(factor))

    def forward(self, x: torch.Tensor, dim: int) -> torch.Tensor:
        f = self.factor
        n = x.shape[dim]
        pad = (-n) % f
        if pad:
            last = x.narrow(dim, n - 1, 1)
            x = torch.cat([x] + [last] * pad, dim)
        shape = list(x.shape)
        shape[dim:dim + 1] = [shape[dim] // f, f]
        w = self.logits.softmax(0).view([f] + [1] * (len(shape) - dim - 2))
        return (x.reshape(shape) * w).sum(dim + 1)


def _upsample(x: torch.Tensor, factor: int, dim: int, length: int) -> torch.Tensor:
    return x.repeat_interleave(factor, dim).narrow(dim, 0, length)


class DualPathStack(nn.Module):
    """Zipformer across frequency, then across time, at 1/factor resolution, with Bypass."""

    def __init__(self, cfg: ZipEnhancerConfig, factor: int) -> None:
        super().__init__()
        self.factor = factor
        c = cfg.channels
        window = None if cfg.attn_window is None else max(1, cfg.attn_window // factor)
        self.freq = ZipformerLayer(c, cfg.heads, cfg.ff, cfg.kernel)
        self.time = ZipformerLayer(c, cfg.heads, cfg.ff, cfg.kernel, attn_window=window)
        if factor > 1:
            self.down_t = PairDownsample(factor)
            self.down_f = PairDownsample(factor)
            self.bypass = Bypass(c)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x [B, T, F, C] → same shape."""
        b, t, f, c = x.shape
        y = x
        if self.factor > 1:
            y = self.down_f(self.down_t(y, 1), 2)
        _, tt, ff, _ = y.shape
        y = self.freq(y.reshape(b * tt, ff, c)).view(b, tt, ff, c)
        y = self.time(y.transpose(1, 2).reshape(b * ff, tt, c)).view(b, ff, tt, c).transpose(1, 2)
        if self.factor > 1:
            y = _upsample(_upsample(y, self.factor, 1, t), self.factor, 2, f)
            y = self.bypass(x, y)
        return y


class LearnableSigmoid(nn.Module):
    """β·sigmoid(slope_f · x), a per-frequency slope (MP-SENet), output in [0, β]."""

    def __init__(self, bins: int, beta: float = 2.0) -> None:
        super().__init__()
        self.beta = beta
        self.slope = nn.Parameter(torch.ones(bins, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.beta * torch.sigmoid(self.slope * x)


class Refine(nn.Module):
    """x + W·PReLU(depthwise(x)) at full frequency resolution: a per-channel 3-bin filter
    (time context is the stacks' job), then a channel mix W. W starts at zero, so the block
    starts as the identity yet learns at once (W's gradient is the filtered x, not zero)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.depthwise = nn.Conv2d(channels, channels, (1, 3), padding=(0, 1), groups=channels)
        self.act = nn.PReLU(channels)
        self.out = nn.Conv2d(channels, channels, 1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.out(self.act(self.depthwise(x)))


class MagnitudeDecoder(nn.Module):
    def __init__(self, cfg: ZipEnhancerConfig) -> None:
        super().__init__()
        c = cfg.channels
        self.mode = cfg.magnitude
        self.dense = DenseBlock(c, cfg.dense_depth)
        self.up = nn.ConvTranspose2d(c, c, (1, 3), stride=(1, 2), padding=(0, 1))
        self.refine = nn.Sequential(*(Refine(c) for _ in range(cfg.refine)))
        self.head = nn.Sequential(nn.Conv2d(c, 1, 1), FrameNorm(1), nn.PReLU(1), nn.Conv2d(1, 1, 1))
        self.mask = LearnableSigmoid(cfg.stft.bins)

    def forward(self, x: torch.Tensor, noisy_mag: torch.Tensor) -> torch.Tensor:
        """x [B, C, T, F'] → compressed magnitude [B, F, T]."""
        y = self.head(self.refine(self.up(self.dense(x)))).squeeze(1).transpose(1, 2)  # [B, F, T]
        if self.mode == "mask":
            return noisy_mag * self.mask(y)
        return F.relu(y)


class PhaseDecoder(nn.Module):
    def __init__(self, cfg: ZipEnhancerConfig) -> None:
        super().__init__()
        c = cfg.channels
        self.residual = cfg.phase == "residual"
        self.dense = DenseBlock(c, cfg.dense_depth)
        self.up = _conv_norm_act(nn.ConvTranspose2d(c, c, (1, 3), stride=(1, 2), padding=(0, 1)), c)
        self.refine = nn.Sequential(*(Refine(c) for _ in range(cfg.refine)))
        self.real = nn.Conv2d(c, 1, 1)
        self.imag = nn.Conv2d(c, 1, 1)

    def forward(self, x: torch.Tensor, noisy_pha: torch.Tensor) -> torch.Tensor:
        y = self.refine(self.up(self.dense(x)))
        r = self.real(y).squeeze(1).transpose(1, 2)
        i = self.imag(y).squeeze(1).transpose(1, 2)
        if self.residual:
            r = r + torch.cos(noisy_pha)
            i = i + torch.sin(noisy_pha)
        return torch.atan2(i + 1e-8, r + 1e-8)


class ZipEnhancer(nn.Module):
    def __init__(self, cfg: ZipEnhancerConfig = PAPER) -> None:
        super().__init__()
        if cfg.magnitude not in ("mask", "mapping") or cfg.phase not in ("residual", "direct"):
            raise ValueError(f"unknown decoder kinds: {cfg.magnitude!r}, {cfg.phase!r}")
        self.cfg = cfg
        self.stft = CompressedStft(cfg.stft)
        self.encoder = DenseEncoder(cfg)
        self.stacks = nn.ModuleList(DualPathStack(cfg, f) for f in cfg.stacks)
        self.mag_decoder = MagnitudeDecoder(cfg)
        self.pha_decoder = PhaseDecoder(cfg)
        self._init_as_identity()

    def _init_as_identity(self) -> None:
        """Zero the last layer of each decoder: a mask of exactly 1 (β·sigmoid(0) with
        β = 2) and no phase correction, so an untrained network passes audio through and
        training learns only the corrections (the zero-init residual-branch idea)."""
        if self.cfg.magnitude == "mask":
            nn.init.zeros_(self.mag_decoder.head[-1].weight)
            nn.init.zeros_(self.mag_decoder.head[-1].bias)
        if self.cfg.phase == "residual":
            for conv in (self.pha_decoder.real, self.pha_decoder.imag):
                nn.init.zeros_(conv.weight)
                nn.init.zeros_(conv.bias)

    def forward(self, mag: torch.Tensor, pha: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Compressed magnitude and phase [B, F, T] → enhanced (mag, phase, complex [B, F, T, 2])."""
        x = torch.stack([mag, pha], 1).transpose(2, 3)  # [B, 2, T, F]
        x = self.encoder(x).permute(0, 2, 3, 1)  # [B, T, F', C]
        for stack in self.stacks:
            x = stack(x)
        x = x.permute(0, 3, 1, 2)  # [B, C, T, F']
        out_mag = self.mag_decoder(x, mag)
        out_pha = self.pha_decoder(x, pha)
        com = torch.stack([out_mag * torch.cos(out_pha), out_mag * torch.sin(out_pha)], -1)
        return out_mag, out_pha, com

    def enhance(self, wave: torch.Tensor, gain: torch.Tensor | float | None = None) -> torch.Tensor:
        """wave [B, N] at 16 kHz → enhanced wave [B, N].

        The input is scaled to unit RMS (or by `gain`, so chunks of one file share one
        scale) and the output scaled back.
        """
        if gain is None:
            gain = wave.pow(2).mean(-1, keepdim=True).add(1e-10).rsqrt()
        mag, pha, _ = self.stft.analyse(wave * gain)
        out_mag, out_pha, _ = self(mag, pha)
        return self.stft.synthesise(out_mag, out_pha, wave.shape[-1]) / gain


def _match_stacks(old: tuple[int, ...], new: tuple[int, ...]) -> dict[int, int]:
    """new stack index → old stack index, matching factors in order (earliest match)."""
    match, j = {}, 0
    for i, f in enumerate(new):
        if j < len(old) and old[j] == f:
            match[i], j = j, j + 1
    if j < len(old):
        raise ValueError(f"stacks {old} are not a subsequence of {new}")
    return match


def _added_stacks(old: tuple[int, ...], new: tuple[int, ...]) -> list[int]:
    """Indices of the stacks in `new` that growing from `old` adds."""
    match = _match_stacks(old, new)
    return [i for i in range(len(new)) if i not in match]


def _is_fresh(name: str, old: ZipEnhancerConfig, new_idx: set[int]) -> bool:
    parts = name.split(".")
    if parts[0] == "stacks":
        return int(parts[1]) in new_idx
    return len(parts) > 2 and parts[1] == "refine" and int(parts[2]) >= old.refine


def fresh_parameters(old: ZipEnhancerConfig, model: ZipEnhancer) -> list[str]:
    """Names of `model`'s parameters that weights of config `old` lack (see `grow`)."""
    new_idx = set(_added_stacks(old.stacks, model.cfg.stacks))
    return [n for n, _ in model.named_parameters() if _is_fresh(n, old, new_idx)]


def grow(model: ZipEnhancer, trained: ZipEnhancer, opening: float = 0.1) -> list[str]:
    """Load `trained` into `model`, whose config may add dual-path stacks and refinement
    blocks; returns the names of the parameters `trained` lacked.

    The trained stacks must appear in order among the model's (by factor, earliest match).
    Every other stack starts with its Bypass nearly closed (`opening`), so the grown network
    starts almost where `trained` was (exactly, at 0). Fully closed is a trap: the Bypass
    scale then only random-walks around 0, the new stack's gradients keep flipping sign with
    it, and it never learns; at 0.1 the validation loss of the small model moves by 0.2 %.
    New refinement blocks start as the identity (their output conv is zero) and still learn.
    """
    a, b = trained.cfg, model.cfg
    if a != dataclasses.replace(b, stacks=a.stacks, refine=a.refine):
        raise ValueError("configs differ in more than their stacks and refinement blocks")
    if b.refine < a.refine:
        raise ValueError(f"{b.refine} refinement blocks cannot hold the trained {a.refine}")
    match = _match_stacks(a.stacks, b.stacks)
    added = _added_stacks(a.stacks, b.stacks)
    if any(b.stacks[i] == 1 for i in added):
        raise ValueError("a new factor-1 stack has no Bypass, so it cannot start as identity")
    to_new = {j: i for i, j in match.items()}
    state = model.state_dict()  # what `trained` lacks keeps its initialisation
    for k, v in trained.state_dict().items():
        if k.startswith("stacks."):
            _, j, rest = k.split(".", 2)
            k = f"stacks.{to_new[int(j)]}.{rest}"
        state[k] = v
    model.load_state_dict(state)
    with torch.no_grad():
        for i in added:
            model.stacks[i].bypass.scale.fill_(opening)
    return fresh_parameters(a, model)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
