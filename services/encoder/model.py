"""The audio encoder interface and its one implementation with five fusion variants.

AudioEncoder is the interface the renderer's trainer and the encoder service use:
``forward(features) -> codes [N_frames, 64]`` plus ``encode_frames`` for a few frames.
AudioCodeEncoder implements it for every variant of the ablation:

  dynamic  mel windows → MelConvEncoder (512) ──────────────────────┐
  content  content windows → ContentWindowNet (d) → Linear → 512 ───┤
  concat   [content d, dynamic d] → Linear → 512 ───────────────────┼─► FCResBlocks 512→256→128→64
  cross    plain cross-attention of the two (d each) → Linear → 512 ┤    → TemporalAttention (±4)
  csfm     CSFM (cross-attention + self-refinement) → Linear → 512 ─┘    → codes [N, 64]
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

import torch
from torch import nn

from services.common.errors import InvalidInput
from services.encoder.dynamic import MelConvEncoder
from services.encoder.features import AudioFeatures
from services.encoder.fusion import CSFM, ContentWindowNet, leaky
from services.encoder.layers import TemporalAttention, fc_res_stack

VARIANTS = ("dynamic", "content", "concat", "cross", "csfm")


def check_variant(variant: str) -> str:
    """`variant`, or InvalidInput naming the encoder variants there are."""
    if variant not in VARIANTS:
        raise InvalidInput(f"unknown encoder variant {variant!r}; choose one of {', '.join(VARIANTS)}")
    return variant
CODE_DIM = 64


@dataclass(frozen=True)
class EncoderConfig:
    """Everything needed to rebuild an encoder from a state dict (stored in subject manifests)."""

    variant: str = "dynamic"
    #: Base channel count of the mel conv encoder (32 = Wav2Lip's 2.8 M params; 16 ≈ 0.8 M).
    conv_width: int = 32
    #: "batch" (Wav2Lip) or "group" (stable with the tiny per-step batches of a NeRF trainer).
    conv_norm: str = "batch"
    #: Columns of the content frames (posterior units or hidden size); 0 for the dynamic variant.
    content_dim: int = 0
    #: "units" (the content model's own units) or "phones" (pinyin units projected onto the
    #: phones that spell them, shared with English: services.encoder.phone_space).
    content_space: str = "units"
    #: Common width of the two paths inside fusion.
    fusion_dim: int = 128
    heads: int = 4
    #: Fusion attention sees ±attn_radius frames.
    attn_radius: int = 4
    #: Temporal attention smooths over ±smooth_radius frames.
    smooth_radius: int = 4
    code_dim: int = CODE_DIM

    def __post_init__(self) -> None:
        check_variant(self.variant)
        if self.variant != "dynamic" and self.content_dim <= 0:
            raise InvalidInput(f"variant {self.variant!r} needs content_dim > 0")
        if self.content_space not in ("units", "phones"):
            raise InvalidInput(f"unknown content space {self.content_space!r}; choose units or phones")

    @property
    def uses_mel(self) -> bool:
        return self.variant != "content"

    @property
    def uses_content(self) -> bool:
        return self.variant != "dynamic"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EncoderConfig:
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise InvalidInput(f"unknown encoder config keys: {', '.join(sorted(unknown))}")
        return cls(**data)


class AudioEncoder(nn.Module):
    """Interface: per-frame features → one code per video frame.

    Subclasses set ``config`` and implement ``forward``; ``context_frames`` says how
    many neighbouring frames on each side a code depends on, which ``encode_frames``
    uses to compute just a few codes (a trainer's random frames) exactly.
    """

    config: EncoderConfig

    @property
    def context_frames(self) -> int:
        raise NotImplementedError

    def forward(self, features: AudioFeatures) -> torch.Tensor:  # pragma: no cover - interface
        raise NotImplementedError

    def encode_frames(self, features: AudioFeatures, frames: torch.Tensor) -> torch.Tensor:
        """Codes [len(frames), 64] for the given frame indices, from their context only."""
        frames = torch.as_tensor(frames, dtype=torch.long).reshape(-1)
        if frames.numel() == 0:
            return torch.zeros(0, self.config.code_dim)
        if int(frames.min()) < 0 or int(frames.max()) >= features.n_frames:
            raise InvalidInput(f"frame index out of range 0..{features.n_frames - 1}")
        lo = max(0, int(frames.min()) - self.context_frames)
        hi = min(features.n_frames, int(frames.max()) + self.context_frames + 1)
        codes = self(features.frames(slice(lo, hi)))
        return codes[frames - lo]


class AudioCodeEncoder(AudioEncoder):
    """The dynamic path, the content path and their fusion, per EncoderConfig.variant."""

    def __init__(self, config: EncoderConfig | None = None) -> None:
        super().__init__()
        self.config = cfg = config or EncoderConfig()
        d = cfg.fusion_dim
        if cfg.uses_mel:
            self.mel_encoder = MelConvEncoder(cfg.conv_width, 512, cfg.conv_norm)
        if cfg.uses_content:
            self.content_net = ContentWindowNet(cfg.content_dim, d)
        if cfg.variant in ("concat", "cross", "csfm"):
            self.dynamic_proj = nn.Linear(512, d)
        if cfg.variant in ("cross", "csfm"):
            self.fusion = CSFM(d, cfg.heads, cfg.attn_radius, full=cfg.variant == "csfm")
        merge_in = {"dynamic": 0, "content": d}.get(cfg.variant, 2 * d)
        self.merge = nn.Linear(merge_in, 512) if merge_in else nn.Identity()
        self.stack = fc_res_stack((512, 256, 128, cfg.code_dim))
        self.smooth = TemporalAttention(cfg.code_dim, cfg.smooth_radius)

    @property
    def context_frames(self) -> int:
        fusion = self.fusion.context_frames if hasattr(self, "fusion") else 0
        return self.config.smooth_radius + fusion

    def frame_features(self, features: AudioFeatures) -> torch.Tensor:
        """[N, 512] per-frame features before the FCResBlock stack."""
        cfg = self.config
        features.require_rates(f"{cfg.variant} audio encoder", mel=cfg.uses_mel, content=cfg.uses_content)
        if cfg.variant == "dynamic":
            return self.mel_encoder(features.mel_windows)
        c = self.content_net(features.content_windows)
        if c.shape[0] != features.n_frames:
            raise InvalidInput("content windows do not match the frame count")
        if cfg.variant == "content":
            return leaky(self.merge(c))
        d = self.dynamic_proj(self.mel_encoder(features.mel_windows))
        fused = torch.cat([c, d], dim=-1) if cfg.variant == "concat" else self.fusion(c, d)
        return leaky(self.merge(fused))

    def forward(self, features: AudioFeatures) -> torch.Tensor:
        return self.smooth(self.stack(self.frame_features(features)))


def build_encoder(config: EncoderConfig | dict[str, Any] | None = None) -> AudioCodeEncoder:
    if isinstance(config, dict):
        config = EncoderConfig.from_dict(config)
    return AudioCodeEncoder(config)
