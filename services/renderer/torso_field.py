"""Pseudo-3D torso (RAD-NeRF / ER-NeRF): a 2D field over image coordinates whose
input is deformed according to the head pose.

The torso follows the head only loosely, so instead of a second NeRF the pixel
coordinates are shifted by a small MLP conditioned on where three learnable anchor
points land when projected through the head pose; a 2D tiled grid + MLP then gives
colour and alpha, composited between the head and the background.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import Tensor, nn

from services.renderer.encodings import FrequencyEncoding
from services.renderer.fields import MLP, grid_and_net
from services.renderer.hashgrid import Backend, GridSpec, HashGrid


@dataclass(frozen=True)
class TorsoFieldConfig:
    num_levels: int = 16
    level_dim: int = 2
    base_resolution: int = 16
    desired_resolution: int = 2048
    log2_hashmap_size: int = 16
    grid_backend: Backend = "auto"
    coord_freqs: int = 8  # frequency encoding of the pixel coordinate
    anchor_freqs: int = 3  # frequency encoding of the projected anchors
    deform_hidden: int = 32
    deform_layers: int = 3
    hidden_dim: int = 32
    num_layers: int = 3
    latent_dim: int = 8
    num_latents: int = 1
    shrink: float = 0.8  # ER-NeRF's torso_shrink: keep deformed coords inside the grid

    def grid_spec(self) -> GridSpec:
        return GridSpec(
            input_dim=2,
            num_levels=self.num_levels,
            level_dim=self.level_dim,
            base_resolution=self.base_resolution,
            desired_resolution=self.desired_resolution,
            log2_hashmap_size=self.log2_hashmap_size,
            gridtype="tiled",
            bound=1.0,
        )


class TorsoField(nn.Module):
    """(pixel coord in [-1, 1]^2, head pose, latent index) -> rgb, alpha."""

    def __init__(self, config: TorsoFieldConfig | None = None) -> None:
        super().__init__()
        c = self.config = config or TorsoFieldConfig()
        # Homogeneous anchor points in head space (ER-NeRF's initial values).
        self.anchors = nn.Parameter(torch.tensor([[0.01, 0.01, 0.1, 1.0], [-0.1, -0.1, 0.1, 1.0], [0.1, -0.1, 0.1, 1.0]]))
        self.coord_encoder = FrequencyEncoding(2, c.coord_freqs)
        self.anchor_encoder = FrequencyEncoding(6, c.anchor_freqs)
        cond_dim = self.coord_encoder.output_dim + self.anchor_encoder.output_dim + c.latent_dim
        self.deform_net = MLP(cond_dim, 2, c.deform_hidden, c.deform_layers)
        self.grid = HashGrid(c.grid_spec(), backend=c.grid_backend)
        self.net = MLP(self.grid.output_dim + cond_dim, 4, c.hidden_dim, c.num_layers)
        self.latents = nn.Parameter(torch.randn(c.num_latents, c.latent_dim) * 0.1)

    def manifest(self) -> dict[str, Any]:
        return {"kind": "pseudo-3d-torso", "config": asdict(self.config), "grid": self.grid.layout}

    def param_groups(self) -> dict[str, list[nn.Parameter]]:
        """"grid": the 2D tiled grid; "net": anchors, deformation and colour MLPs, latent codes."""
        return grid_and_net(self, self.grid)

    def project_anchors(self, pose: Tensor) -> Tensor:
        """Anchors seen from each camera: pose [F, 4, 4] camera-to-world (renderer
        convention) -> [F, 6] perspective-divided xy of the three anchors."""
        cam = torch.linalg.inv(pose.to(self.anchors.dtype)) @ self.anchors.T  # [F, 4, 3]
        cam = cam.transpose(1, 2)  # [F, 3, 4]
        xy = cam[..., :2] / cam[..., 3:] / cam[..., 2:3]
        return xy.reshape(pose.shape[0], 6)

    def forward(self, xy: Tensor, pose: Tensor, frame: Tensor, latent: Tensor | None = None) -> dict[str, Tensor]:
        """xy [N, 2] normalised pixel coords, pose [F, 4, 4], frame [N] -> rgb [N, 3],
        alpha [N], deform [N, 2]."""
        xy = xy * self.config.shrink
        enc_anchor = self.anchor_encoder(self.project_anchors(pose))[frame]
        code = self.latents[:1].expand(xy.shape[0], -1) if latent is None else self.latents[latent[frame]]
        h = torch.cat([self.coord_encoder(xy), enc_anchor, code], dim=-1)
        dx = self.deform_net(h)
        feat = self.grid((xy + dx).clamp(-1, 1))
        out = self.net(torch.cat([feat, h], dim=-1))
        return {
            "alpha": torch.sigmoid(out[:, 0]) * (1 + 2 * 0.001) - 0.001,
            "rgb": torch.sigmoid(out[:, 1:]) * (1 + 2 * 0.001) - 0.001,
            "deform": dx,
        }
