"""Tri-plane audio-driven head field (ER-NeRF / RAE-NeRF).

Three 2D hash grids on the xy, yz and xz planes replace one 3D grid (fewer hash
collisions at the same table size); a per-point region attention picks which audio
channels move that point; an eye attention gates the blink scalar; no-bias MLPs give
density (exp) + a geometry feature, and colour from SH(view) + geometry + a per-frame
latent code (index 0 at inference).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from services.renderer.encodings import SHEncoding
from services.renderer.fields import MLP, grid_and_net, trunc_exp
from services.renderer import cpu_kernels
from services.renderer.hashgrid import Backend, GridSpec, HashGrid, make_grid


@dataclass(frozen=True)
class HeadFieldConfig:
    # tri-plane grids (per plane)
    num_levels: int = 14
    level_dim: int = 1
    base_resolution: int = 64
    desired_resolution: int = 512
    log2_hashmap_size: int = 14
    bound: float = 1.0
    grid_layout: Literal["torch-ngp", "tiny-cuda-nn", "auto"] = "torch-ngp"
    grid_backend: Backend = "auto"
    # conditioning
    audio_dim: int = 64  # size of the per-frame audio code (and of the attention)
    att_hidden: int = 64
    eye_hidden: int = 16
    # MLPs
    hidden_dim: int = 64
    sigma_layers: int = 3
    geo_feat_dim: int = 64
    color_hidden: int = 64
    color_layers: int = 2
    latent_dim: int = 4
    num_latents: int = 1  # per-frame codes learnt in training; index 0 at inference

    def grid_spec(self) -> GridSpec:
        return GridSpec(
            input_dim=2,
            num_levels=self.num_levels,
            level_dim=self.level_dim,
            base_resolution=self.base_resolution,
            desired_resolution=self.desired_resolution,
            log2_hashmap_size=self.log2_hashmap_size,
            gridtype="hash",
            bound=self.bound,
        )


@dataclass
class HeadCond:
    """Per-frame conditioning of a batch of F frames."""

    audio: Tensor  # [F, audio_dim]
    eye: Tensor | None = None  # [F] or [F, 1] blink in [0, 1]
    latent: Tensor | None = None  # [F] long latent-code index (None = 0)
    #: only density and colour are wanted: without autograd the attention maps (training
    #: targets, composited along every ray like colour) are then left out
    lean: bool = False

    @property
    def num_frames(self) -> int:
        return self.audio.shape[0]

    def to(self, device: torch.device | str) -> HeadCond:
        return HeadCond(
            self.audio.to(device),
            None if self.eye is None else self.eye.to(device),
            None if self.latent is None else self.latent.to(device),
            self.lean,
        )


class TriPlaneEncoding(nn.Module):
    """Features of the xy, yz and xz projections of a 3D point, concatenated."""

    PLANES = ((0, 1), (1, 2), (0, 2))

    def __init__(self, spec: GridSpec, layout: str = "torch-ngp", backend: Backend = "auto") -> None:
        super().__init__()
        self.grids = nn.ModuleList(make_grid(spec, layout=layout, backend=backend) for _ in self.PLANES)  # type: ignore[arg-type]
        self.output_dim = 3 * spec.output_dim

    def forward(self, x: Tensor) -> Tensor:
        grids = list(self.grids)
        if all(isinstance(g, HashGrid) and g.resolve_backend(x) == "cpu" for g in grids):
            # one fused kernel pass per plane into a single output buffer
            return cpu_kernels.multi_grid_encode(x, [g.embeddings for g in grids], grids[0].spec, list(self.PLANES))
        return torch.cat([g(x[:, list(p)]) for g, p in zip(grids, self.PLANES)], dim=-1)

    @property
    def layout(self) -> dict[str, Any]:
        return {"planes": ["xy", "yz", "xz"], "grid": self.grids[0].layout}


class HeadField(nn.Module):
    """The audio-driven head NeRF; implements `fields.RadianceField`."""

    def __init__(self, config: HeadFieldConfig | None = None) -> None:
        super().__init__()
        c = self.config = config or HeadFieldConfig()
        # the tri-plane encoding; "encoder" is kept as its name because state-dict keys
        # (head.encoder.grids.*) and manifests carry it
        self.encoder = TriPlaneEncoding(c.grid_spec(), layout=c.grid_layout, backend=c.grid_backend)
        in_dim = self.encoder.output_dim
        self.audio_att = MLP(in_dim, c.audio_dim, c.att_hidden, 2)
        self.eye_att = MLP(in_dim, 1, c.eye_hidden, 2)
        self.sigma_net = MLP(in_dim + c.audio_dim + 1, 1 + c.geo_feat_dim, c.hidden_dim, c.sigma_layers)
        self.dir_encoder = SHEncoding()
        self.color_net = MLP(SHEncoding.output_dim + c.geo_feat_dim + c.latent_dim, 3, c.color_hidden, c.color_layers)
        self.latents = nn.Parameter(torch.randn(c.num_latents, c.latent_dim) * 0.1)

    def manifest(self) -> dict[str, Any]:
        """Model config + grid layout, for the subject manifest."""
        return {"kind": "tri-plane-head", "config": asdict(self.config), "encoder": self.encoder.layout}

    def param_groups(self) -> dict[str, list[nn.Parameter]]:
        """"grid": the tri-plane hash tables; "net": the MLPs and latent codes."""
        return grid_and_net(self, self.encoder)

    def _geometry(self, x: Tensor, cond: HeadCond, frame: Tensor) -> dict[str, Tensor]:
        # Same maths as ER-NeRF's cat-then-MLP, regrouped for speed: every first layer
        # that reads enc_x is one GEMM, and the sigma MLP's audio/eye inputs are added
        # to its first layer (addmm) instead of being concatenated. Without autograd
        # the element-wise steps run in place (no copies of [N, 64] activations).
        inplace = not torch.is_grad_enabled()
        enc_x = self.encoder(x)
        n_in = enc_x.shape[1]
        a1, e1, s1 = self.audio_att[0].weight, self.eye_att[0].weight, self.sigma_net[0].weight
        h = F.linear(enc_x, torch.cat([a1, e1, s1[:, :n_in]], dim=0))
        ha, he, hs = h.split([a1.shape[0], e1.shape[0], s1.shape[0]], dim=1)
        att = F.linear(_relu(ha, inplace), self.audio_att[2].weight)  # [N, A] audio channels that move this point
        eye_att = torch.sigmoid(F.linear(_relu(he, inplace), self.eye_att[2].weight))  # [N, 1]
        audio_w = cond.audio.to(att.dtype).index_select(0, frame)
        audio_w = audio_w.mul_(att) if inplace else audio_w * att
        hs = _addmm(hs, audio_w, s1[:, n_in : n_in + audio_w.shape[1]].t(), inplace)
        if cond.eye is not None:
            eye = cond.eye.reshape(-1, 1).to(att.dtype).index_select(0, frame)
            eye = eye.mul_(eye_att) if inplace else eye * eye_att
            hs = _addmm(hs, eye, s1[:, n_in + audio_w.shape[1] :].t(), inplace)
        out = self.sigma_net.run_from(_relu(hs, inplace), 2)
        geometry = {"sigma": trunc_exp(out[:, 0]), "geo": out[:, 1:]}
        if not (cond.lean and inplace):
            geometry["ambient_aud"] = att.norm(dim=-1)  # L1 target outside the face
            geometry["ambient_eye"] = eye_att[:, 0]
        return geometry

    def density(self, x: Tensor, cond: HeadCond, frame: Tensor) -> Tensor:
        return self._geometry(x, cond, frame)["sigma"]

    def forward(self, x: Tensor, d: Tensor, cond: HeadCond, frame: Tensor) -> dict[str, Tensor]:
        inplace = not torch.is_grad_enabled()
        g = self._geometry(x, cond, frame)
        geo = g.pop("geo")
        # colour first layer split as [SH | geometry | latent]; the latent part is one
        # row per frame, gathered rather than concatenated
        w = self.color_net[0].weight
        n_sh, n_geo = SHEncoding.output_dim, geo.shape[1]
        latent = self.latents[:1] if cond.latent is None else self.latents[cond.latent.to(self.latents.device)]
        per_frame = F.linear(latent.to(d.dtype), w[:, n_sh + n_geo :])  # [F or 1, H]
        idx = torch.zeros_like(frame) if cond.latent is None else frame
        h = _addmm(per_frame.index_select(0, idx), self.dir_encoder(d), w[:, :n_sh].t(), inplace)
        h = _addmm(h, geo, w[:, n_sh : n_sh + n_geo].t(), inplace)
        h = self.color_net.run_from(_relu(h, inplace), 2)
        g["rgb"] = torch.sigmoid(h) * (1 + 2 * 0.001) - 0.001
        return g


def _relu(x: Tensor, inplace: bool) -> Tensor:
    return x.relu_() if inplace else torch.relu(x)


def _addmm(c: Tensor, a: Tensor, b: Tensor, inplace: bool) -> Tensor:
    # in-place ops are not autocast: match c's dtype by hand
    return c.addmm_(a.to(c.dtype), b.to(c.dtype)) if inplace else torch.addmm(c, a, b)
