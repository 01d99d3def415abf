"""Whole frames: head NeRF over the pseudo-3D torso over the background image.

`render_frames` renders a batch of frames (each with its own camera pose, audio code
and blink) in one call, walking the F*H*W pixels in chunks so memory stays bounded
at any resolution; rays are built per chunk, never for the whole batch at once.
`TalkingHeadModel` bundles head, torso and occupancy grid into one module (one
state dict, one manifest entry).
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from services.renderer.fields import RadianceField
from services.renderer.head_field import HeadCond, HeadField, HeadFieldConfig
from services.renderer.occupancy import OccupancyGrid
from services.renderer.rays import Intrinsics
from services.renderer.torso_field import TorsoField, TorsoFieldConfig
from services.renderer.volume import RenderConfig, render_rays


def rays_for_pixels(c2w: Tensor, intr: Intrinsics, flat: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Rays of pixels given as flat indices into [F, H, W]: origins, unit directions
    [n, 3], frame [n] and normalised pixel coords [n, 2] (for the torso)."""
    p = intr.height * intr.width
    frame = flat // p
    pix = flat % p
    rays_o, rays_d, xy = rays_at(c2w, intr, frame, pix // intr.width, pix % intr.width)
    return rays_o, rays_d, frame, xy


def rays_at(c2w: Tensor, intr: Intrinsics, frame: Tensor, row: Tensor, col: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Rays through the centres of pixels (row, col) of frames `frame` (each [n]; a pixel
    may lie outside the image): origins, unit directions [n, 3] and normalised pixel
    coords [n, 2]."""
    i = col.to(c2w.dtype) + 0.5
    j = row.to(c2w.dtype) + 0.5
    d = torch.stack([(i - intr.cx) / intr.fx, (j - intr.cy) / intr.fy, torch.ones_like(i)], dim=-1)
    d = d / d.norm(dim=-1, keepdim=True)
    rot = c2w[frame, :3, :3]  # [n, 3, 3]
    rays_d = (rot @ d[..., None])[..., 0]
    rays_o = c2w[frame, :3, 3]
    xy = torch.stack([2 * i / intr.width - 1, 2 * j / intr.height - 1], dim=-1)
    return rays_o.contiguous(), rays_d.contiguous(), xy


def _background_for(background: Tensor | None, frame: Tensor, flat: Tensor, intr: Intrinsics) -> Tensor:
    n = flat.shape[0]
    if background is None:
        return torch.ones(n, 3, device=flat.device)
    pix = flat % (intr.height * intr.width)
    if background.dim() == 3:  # [H, W, 3] shared
        return background.reshape(-1, 3)[pix]
    return background.reshape(background.shape[0], -1, 3)[frame, pix]


def render_pixels(
    head: RadianceField,
    c2w: Tensor,
    intr: Intrinsics,
    flat: Tensor,
    cond: Any,
    occupancy: OccupancyGrid | None = None,
    background: Tensor | None = None,
    torso: TorsoField | None = None,
    torso_latent: Tensor | None = None,
    config: RenderConfig = RenderConfig(),
    perturb: bool = False,
    generator: torch.Generator | None = None,
) -> dict[str, Tensor]:
    """Render chosen pixels (flat indices into [F, H, W], e.g. a training batch of
    random rays or lip patches) of F frames: head over torso over background.

    `background` is [n, 3] colours of those pixels, or a full [H, W, 3] / [F, H, W, 3]
    image (None = white). Returns image [n, 3], head_rgb (premultiplied), head_alpha,
    depth, samples, the head's composited extras (ambient_aud, ...), torso_alpha,
    torso_rgb and deform when a torso is given.
    """
    rays_o, rays_d, frame, xy = rays_for_pixels(c2w, intr, flat)
    out = render_rays(head, rays_o, rays_d, cond, frame, occupancy, config, perturb, generator)
    if background is not None and background.dim() == 2:
        bg = background.to(rays_o.dtype)
    else:
        bg = _background_for(background, frame, flat, intr).to(rays_o.dtype)
    if torso is not None:
        tor = torso(xy, c2w, frame, torso_latent)
        ta = tor["alpha"][:, None]
        bg = tor["rgb"] * ta + bg * (1 - ta)
        out.update(torso_alpha=tor["alpha"], torso_rgb=tor["rgb"], deform=tor["deform"])
    out["image"] = out["rgb"] + (1 - out["alpha"][:, None]) * bg
    out["head_rgb"] = out.pop("rgb")
    out["head_alpha"] = out.pop("alpha")
    return out


def render_frames(
    head: RadianceField,
    c2w: Tensor,
    intr: Intrinsics,
    cond: Any,
    occupancy: OccupancyGrid | None = None,
    background: Tensor | None = None,
    torso: TorsoField | None = None,
    torso_latent: Tensor | None = None,
    config: RenderConfig = RenderConfig(),
    perturb: bool = False,
    generator: torch.Generator | None = None,
) -> dict[str, Tensor]:
    """Render F whole frames: c2w [F, 4, 4] in renderer space, `cond` with F frames,
    background [H, W, 3] or [F, H, W, 3] in [0, 1] (None = white).

    Returns image [F, H, W, 3], head_alpha, depth [F, H, W], head_rgb (premultiplied)
    [F, H, W, 3], samples, torso_alpha [F, H, W] when a torso is given, and the head
    field's extra outputs (e.g. ambient_aud) composited per pixel.
    """
    f = c2w.shape[0]
    h, w = intr.height, intr.width
    total = f * h * w
    dev = c2w.device
    parts: list[dict[str, Tensor]] = []
    for s in range(0, total, config.chunk):
        flat = torch.arange(s, min(s + config.chunk, total), device=dev)
        out = render_pixels(head, c2w, intr, flat, cond, occupancy, background, torso, torso_latent, config, perturb, generator)
        out.pop("torso_rgb", None)
        out.pop("deform", None)
        parts.append(out)
    return {k: torch.cat([p[k] for p in parts], dim=0).reshape((f, h, w) + tuple(parts[0][k].shape[1:])) for k in parts[0]}


class TalkingHeadModel(nn.Module):
    """Head field + torso field + occupancy grid of one subject."""

    #: The renderer kind a subject manifest names for this model.
    kind: ClassVar[str] = "triplane-nerf"

    def __init__(
        self,
        head: HeadFieldConfig | None = None,
        torso: TorsoFieldConfig | None = None,
        with_torso: bool = True,
        render: RenderConfig | None = None,
        occupancy_resolution: int = 128,
    ) -> None:
        super().__init__()
        self.render_config = render or RenderConfig()
        self.head = HeadField(head)
        self.torso = TorsoField(torso) if with_torso else None
        self.occupancy = OccupancyGrid(self.render_config.aabb, occupancy_resolution)

    def manifest(self) -> dict[str, Any]:
        return {
            "head": self.head.manifest(),
            "torso": None if self.torso is None else self.torso.manifest(),
            "render": asdict(self.render_config),
            "occupancy": {"resolution": self.occupancy.resolution, "aabb": list(self.render_config.aabb)},
        }

    def render_frames(
        self,
        c2w: Tensor,
        intr: Intrinsics,
        cond: HeadCond,
        background: Tensor | None = None,
        torso_latent: Tensor | None = None,
        perturb: bool = False,
        use_torso: bool = True,
    ) -> dict[str, Tensor]:
        return render_frames(
            self.head,
            c2w,
            intr,
            cond,
            self.occupancy,
            background,
            self.torso if use_torso else None,
            torso_latent,
            self.render_config,
            perturb,
        )

    def render_pixels(
        self,
        c2w: Tensor,
        intr: Intrinsics,
        flat: Tensor,
        cond: HeadCond,
        background: Tensor | None = None,
        torso_latent: Tensor | None = None,
        perturb: bool = True,
        use_torso: bool = True,
        generator: torch.Generator | None = None,
    ) -> dict[str, Tensor]:
        """Training entry point: chosen pixels of F frames (see `render_pixels`)."""
        return render_pixels(
            self.head,
            c2w,
            intr,
            flat,
            cond,
            self.occupancy,
            background,
            self.torso if use_torso else None,
            torso_latent,
            self.render_config,
            perturb,
            generator,
        )

    def param_groups(self, part: str) -> dict[str, list[nn.Parameter]]:
        """Trainable parameters of `part` ("head" or "torso") by optimiser group: "grid"
        (hash tables) and "net" (the rest)."""
        if part == "head":
            return self.head.param_groups()
        if part == "torso" and self.torso is not None:
            return self.torso.param_groups()
        raise ValueError(f"no {part!r} part to train")

    @torch.no_grad()
    def prepare_occupancy(self, c2w: Tensor, intr: Intrinsics) -> int:
        """Mark the cells no training camera sees as never occupied (once, before
        training); returns how many cells that leaves unseen."""
        return self.occupancy.mark_unseen(c2w, intr)

    @torch.no_grad()
    def update_occupancy(self, cond: HeadCond, **kwargs: Any) -> None:
        """One occupancy update for one condition (frame 0 of `cond`)."""

        def density(x: Tensor) -> Tensor:
            return self.head.density(x, cond, torch.zeros(x.shape[0], dtype=torch.long, device=x.device))

        self.occupancy.update(density, **kwargs)
