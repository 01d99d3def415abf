"""A wav2vec2 CTC model in plain PyTorch, for inference: the architecture of the bundled
content model (and of `tiny_ctc_config`), with the parameter names of transformers'
Wav2Vec2ForCTC, so the same safetensors load into either.

Why not transformers at inference: importing it (and the modules its wav2vec2 pulls in:
torch.distributed, dynamo, sympy) costs ~2 s of interpreter time per process, longer than
the model takes to load and to run a sentence. Training keeps using transformers.

Covered: a conv feature encoder with GroupNorm on its first layer ("group") or LayerNorm on
every layer ("layer"), GELU everywhere, the pre-LN ("stable layer norm") or post-LN
transformer, and a linear CTC head. Other configs (adapters, other activations) are refused
by `supports` and stay with transformers. Dropout and SpecAugment are training-only and absent.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class Wav2Vec2Spec:
    """The config.json fields the model needs (transformers' Wav2Vec2Config names)."""

    vocab_size: int
    hidden_size: int
    num_hidden_layers: int
    num_attention_heads: int
    intermediate_size: int
    conv_dim: tuple[int, ...]
    conv_kernel: tuple[int, ...]
    conv_stride: tuple[int, ...]
    conv_bias: bool = False
    feat_extract_norm: str = "group"
    do_stable_layer_norm: bool = False
    num_conv_pos_embeddings: int = 128
    num_conv_pos_embedding_groups: int = 16
    layer_norm_eps: float = 1e-5
    pad_token_id: int = 0

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Wav2Vec2Spec:
        names = {f.name for f in fields(cls)}
        values = {k: tuple(v) if isinstance(v, list) else v for k, v in config.items() if k in names}
        return cls(**values)


def supports(config: Mapping[str, Any]) -> bool:
    """Whether this module reproduces the model a config.json describes."""
    return (list(config.get("architectures") or []) == ["Wav2Vec2ForCTC"]
            and config.get("model_type") == "wav2vec2"
            and config.get("feat_extract_norm", "group") in ("group", "layer")
            and config.get("feat_extract_activation", "gelu") == "gelu"
            and config.get("hidden_act", "gelu") == "gelu"
            and not config.get("add_adapter", False)
            and config.get("adapter_attn_dim") is None
            and len(config.get("conv_dim", ())) == len(config.get("conv_kernel", ())) == len(config.get("conv_stride", ()))
            and config.get("num_feat_extract_layers", len(config.get("conv_dim", ()))) == len(config.get("conv_dim", ())))


class CtcOutput(NamedTuple):
    logits: torch.Tensor  # [B, T, vocab]


class _ConvLayer(nn.Module):
    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, bias: bool, norm: str | None) -> None:
        super().__init__()
        self.conv = nn.Conv1d(c_in, c_out, kernel, stride=stride, bias=bias)
        self.norm = norm
        if norm == "group":
            self.layer_norm = nn.GroupNorm(c_out, c_out, affine=True)
        elif norm == "layer":
            self.layer_norm = nn.LayerNorm(c_out, elementwise_affine=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)
        if self.norm == "group":
            x = self.layer_norm(x)
        elif self.norm == "layer":
            x = self.layer_norm(x.transpose(-2, -1)).transpose(-2, -1)
        return F.gelu(x)


class _FeatureEncoder(nn.Module):
    def __init__(self, s: Wav2Vec2Spec) -> None:
        super().__init__()
        dims = (1, *s.conv_dim)
        self.conv_layers = nn.ModuleList(
            _ConvLayer(dims[i], dims[i + 1], s.conv_kernel[i], s.conv_stride[i], s.conv_bias,
                       "layer" if s.feat_extract_norm == "layer" else ("group" if i == 0 else None))
            for i in range(len(s.conv_dim)))

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        x = wave[:, None]
        for layer in self.conv_layers:
            x = layer(x)
        return x


class _FeatureProjection(nn.Module):
    def __init__(self, s: Wav2Vec2Spec) -> None:
        super().__init__()
        self.layer_norm = nn.LayerNorm(s.conv_dim[-1], eps=s.layer_norm_eps)
        self.projection = nn.Linear(s.conv_dim[-1], s.hidden_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.projection(self.layer_norm(x))


class _PositionalConv(nn.Module):
    def __init__(self, s: Wav2Vec2Spec) -> None:
        super().__init__()
        k = s.num_conv_pos_embeddings
        conv = nn.Conv1d(s.hidden_size, s.hidden_size, k, padding=k // 2, groups=s.num_conv_pos_embedding_groups)
        self.conv = nn.utils.parametrizations.weight_norm(conv, name="weight", dim=2)
        self.trim = 1 if k % 2 == 0 else 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x.transpose(1, 2))
        if self.trim:
            y = y[:, :, :-self.trim]
        return F.gelu(y).transpose(1, 2)


class _Attention(nn.Module):
    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads, self.head_dim = heads, dim // heads
        self.scaling = self.head_dim ** -0.5
        self.k_proj = nn.Linear(dim, dim)
        self.v_proj = nn.Linear(dim, dim)
        self.q_proj = nn.Linear(dim, dim)
        self.out_proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = (*x.shape[:-1], -1, self.head_dim)
        q = self.q_proj(x).view(shape).transpose(1, 2)
        k = self.k_proj(x).view(shape).transpose(1, 2)
        v = self.v_proj(x).view(shape).transpose(1, 2)
        out = F.scaled_dot_product_attention(q, k, v, dropout_p=0.0, scale=self.scaling, is_causal=False)
        out = out.transpose(1, 2).contiguous()
        return self.out_proj(out.reshape(*x.shape[:-1], -1).contiguous())


class _FeedForward(nn.Module):
    def __init__(self, s: Wav2Vec2Spec) -> None:
        super().__init__()
        self.intermediate_dense = nn.Linear(s.hidden_size, s.intermediate_size)
        self.output_dense = nn.Linear(s.intermediate_size, s.hidden_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.output_dense(F.gelu(self.intermediate_dense(x)))


class _EncoderLayer(nn.Module):
    def __init__(self, s: Wav2Vec2Spec) -> None:
        super().__init__()
        self.pre_ln = s.do_stable_layer_norm
        self.attention = _Attention(s.hidden_size, s.num_attention_heads)
        self.layer_norm = nn.LayerNorm(s.hidden_size, eps=s.layer_norm_eps)
        self.feed_forward = _FeedForward(s)
        self.final_layer_norm = nn.LayerNorm(s.hidden_size, eps=s.layer_norm_eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.pre_ln:
            x = x + self.attention(self.layer_norm(x))
            return x + self.feed_forward(self.final_layer_norm(x))
        x = self.layer_norm(x + self.attention(x))
        return self.final_layer_norm(x + self.feed_forward(x))


class _Encoder(nn.Module):
    def __init__(self, s: Wav2Vec2Spec) -> None:
        super().__init__()
        self.pre_ln = s.do_stable_layer_norm
        self.pos_conv_embed = _PositionalConv(s)
        self.layer_norm = nn.LayerNorm(s.hidden_size, eps=s.layer_norm_eps)
        self.layers = nn.ModuleList(_EncoderLayer(s) for _ in range(s.num_hidden_layers))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.pos_conv_embed(x)
        if not self.pre_ln:
            x = self.layer_norm(x)
        for layer in self.layers:
            x = layer(x)
        return self.layer_norm(x) if self.pre_ln else x


class _Wav2Vec2(nn.Module):
    def __init__(self, s: Wav2Vec2Spec) -> None:
        super().__init__()
        self.feature_extractor = _FeatureEncoder(s)
        self.feature_projection = _FeatureProjection(s)
        self.encoder = _Encoder(s)
        # Training-only (SpecAugment's mask vector); kept so a checkpoint loads strictly.
        self.masked_spec_embed = nn.Parameter(torch.zeros(s.hidden_size))

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        x = self.feature_extractor(wave).transpose(1, 2)
        return self.encoder(self.feature_projection(x))


class Wav2Vec2Ctc(nn.Module):
    """wave [B, N] (normalised, padded by the caller) → CtcOutput(logits [B, T, vocab])."""

    def __init__(self, spec: Wav2Vec2Spec) -> None:
        super().__init__()
        self.config = spec
        self.wav2vec2 = _Wav2Vec2(spec)
        self.lm_head = nn.Linear(spec.hidden_size, spec.vocab_size)

    def forward(self, wave: torch.Tensor, output_hidden_states: bool = False) -> CtcOutput:
        if output_hidden_states:
            raise ValueError("Wav2Vec2Ctc gives logits only")
        return CtcOutput(self.lm_head(self.wav2vec2(wave)))


def load_wav2vec2_ctc(config: Mapping[str, Any], state: Mapping[str, torch.Tensor]) -> Wav2Vec2Ctc | None:
    """The model of `config` with `state` loaded, or None when the state's names do not
    match this module's (a checkpoint of another layout: let transformers read it)."""
    spec = Wav2Vec2Spec.from_config(config)
    masked = "wav2vec2.masked_spec_embed"
    model = Wav2Vec2Ctc(spec)  # not on the meta device: its weight norm there imports torch._dynamo (~1 s)
    expected = set(model.state_dict())
    if set(state) - {masked} != expected - {masked}:
        return None
    if masked not in state:
        state = {**state, masked: torch.zeros(spec.hidden_size)}
    model.load_state_dict(dict(state), strict=True)
    return model.eval()
