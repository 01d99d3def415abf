"""Cameras and rays.

Poses arrive as in ER-NeRF's ``transforms.json``: 4x4 camera-to-world matrices in the
OpenGL/NeRF convention (camera looks down -z, y up). `nerf_matrix_to_ngp` turns them
into the renderer's space exactly as ER-NeRF does (axes permuted, translation x4),
after which the camera looks down +z with y down (OpenCV), the convention `get_rays`
uses. In that space the head sits at the origin inside the AABB
[-1, -0.5, -1, 1, 0.5, 1] (the thin y axis is the head's depth).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

#: ER-NeRF's head AABB in renderer space: (xmin, ymin, zmin, xmax, ymax, zmax).
DEFAULT_AABB = (-1.0, -0.5, -1.0, 1.0, 0.5, 1.0)


@dataclass(frozen=True)
class Intrinsics:
    """Pinhole intrinsics in pixels for an H x W image."""

    fx: float
    fy: float
    cx: float
    cy: float
    height: int
    width: int

    def resized(self, height: int, width: int) -> Intrinsics:
        """The same camera rendered at another resolution."""
        sx, sy = width / self.width, height / self.height
        return Intrinsics(self.fx * sx, self.fy * sy, self.cx * sx, self.cy * sy, height, width)


def nerf_matrix_to_ngp(pose: Tensor, scale: float = 4.0, offset: tuple[float, float, float] = (0.0, 0.0, 0.0)) -> Tensor:
    """transforms.json camera-to-world [..., 4, 4] -> renderer space (ER-NeRF's
    `nerf_matrix_to_ngp`: rows rotated y,z,x; columns 1, 2 negated; translation scaled)."""
    p = pose
    out = torch.zeros_like(p)
    for new_row, old_row, off in ((0, 1, offset[0]), (1, 2, offset[1]), (2, 0, offset[2])):
        out[..., new_row, 0] = p[..., old_row, 0]
        out[..., new_row, 1] = -p[..., old_row, 1]
        out[..., new_row, 2] = -p[..., old_row, 2]
        out[..., new_row, 3] = p[..., old_row, 3] * scale + off
    out[..., 3, 3] = 1.0
    return out


def pixel_grid(intr: Intrinsics, device: torch.device | str = "cpu") -> tuple[Tensor, Tensor]:
    """Pixel-centre coordinates (i along x, j along y), row-major [H*W] each."""
    j, i = torch.meshgrid(
        torch.arange(intr.height, dtype=torch.float32, device=device),
        torch.arange(intr.width, dtype=torch.float32, device=device),
        indexing="ij",
    )
    return i.reshape(-1) + 0.5, j.reshape(-1) + 0.5


def camera_directions(intr: Intrinsics, device: torch.device | str = "cpu") -> Tensor:
    """Unit ray directions in camera space (OpenCV: +z forward, y down), [H*W, 3]."""
    i, j = pixel_grid(intr, device)
    d = torch.stack([(i - intr.cx) / intr.fx, (j - intr.cy) / intr.fy, torch.ones_like(i)], dim=-1)
    return d / d.norm(dim=-1, keepdim=True)


def get_rays(c2w: Tensor, intr: Intrinsics) -> tuple[Tensor, Tensor]:
    """Rays for every pixel of every camera: c2w [B, 4, 4] (renderer space) ->
    origins and unit directions, each [B, H*W, 3], pixels row-major."""
    dirs = camera_directions(intr, c2w.device).to(c2w.dtype)  # [P, 3]
    rays_d = dirs @ c2w[:, :3, :3].transpose(1, 2)  # [B, P, 3]
    rays_o = c2w[:, None, :3, 3].expand_as(rays_d)
    return rays_o.contiguous(), rays_d.contiguous()


def normalized_pixel_coords(intr: Intrinsics, device: torch.device | str = "cpu") -> Tensor:
    """Pixel centres mapped to [-1, 1]^2 (x right, y down), [H*W, 2]: the torso's input."""
    i, j = pixel_grid(intr, device)
    return torch.stack([2 * i / intr.width - 1, 2 * j / intr.height - 1], dim=-1)


def intersect_aabb(rays_o: Tensor, rays_d: Tensor, aabb: Tensor, min_near: float = 0.05) -> tuple[Tensor, Tensor, Tensor]:
    """Slab test. Returns t_near, t_far [R] and hit [R]; t_near >= min_near, and
    t_near = t_far for rays that miss (so they get no samples)."""
    d = torch.where(rays_d.abs() < 1e-12, torch.full_like(rays_d, 1e-12), rays_d)
    inv = 1.0 / d
    t0 = (aabb[:3] - rays_o) * inv
    t1 = (aabb[3:] - rays_o) * inv
    near = torch.minimum(t0, t1).amax(dim=-1).clamp(min=min_near)
    far = torch.maximum(t0, t1).amin(dim=-1)
    hit = far > near
    near = torch.where(hit, near, far)
    return near, far, hit
