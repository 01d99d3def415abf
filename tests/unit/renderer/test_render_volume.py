"""Volume rendering on analytic fields with known answers."""

from __future__ import annotations

import math

import pytest
import torch
from torch import Tensor, nn

from services.renderer import cpu_kernels
from services.renderer.occupancy import OccupancyGrid
from services.renderer.rays import Intrinsics, get_rays
from services.renderer.renderer import render_frames
from services.renderer.volume import RenderConfig, march_reference, render_rays


class UniformField(nn.Module):
    """sigma and colour constant everywhere (the AABB makes it a slab)."""

    def __init__(self, sigma: float, rgb: tuple[float, float, float]) -> None:
        super().__init__()
        self.sigma, self.rgb = sigma, torch.tensor(rgb)

    def density(self, x: Tensor, cond: object, frame: Tensor) -> Tensor:
        return torch.full((x.shape[0],), self.sigma)

    def forward(self, x: Tensor, d: Tensor, cond: object, frame: Tensor) -> dict[str, Tensor]:
        return {"sigma": self.density(x, cond, frame), "rgb": self.rgb.expand(x.shape[0], 3)}


class BlobField(nn.Module):
    """sigma inside an ellipsoid, 0 outside; colour varies with position."""

    def __init__(self, sigma: float, semi: tuple[float, float, float]) -> None:
        super().__init__()
        self.sigma, self.semi = sigma, torch.tensor(semi)

    def density(self, x: Tensor, cond: object, frame: Tensor) -> Tensor:
        inside = ((x / self.semi) ** 2).sum(-1) <= 1
        return inside.float() * self.sigma

    def forward(self, x: Tensor, d: Tensor, cond: object, frame: Tensor) -> dict[str, Tensor]:
        rgb = torch.sigmoid(torch.stack([3 * x[:, 0], 3 * x[:, 1] - x[:, 2], 2 * x[:, 2]], dim=-1))
        return {"sigma": self.density(x, cond, frame), "rgb": rgb}


def look_at_origin(distance: float) -> Tensor:
    """Camera on +y looking at the origin (renderer space, OpenCV axes)."""
    c2w = torch.eye(4)
    # forward (camera z) = -y world, right (camera x) = +z world, down (camera y) = -x
    c2w[:3, 0] = torch.tensor([0.0, 0.0, 1.0])
    c2w[:3, 1] = torch.tensor([-1.0, 0.0, 0.0])
    c2w[:3, 2] = torch.tensor([0.0, -1.0, 0.0])
    c2w[:3, 3] = torch.tensor([0.0, distance, 0.0])
    return c2w


def test_uniform_slab_transmittance_is_exp_minus_sigma_length() -> None:
    sigma, h = 2.0, 0.15
    cfg = RenderConfig(aabb=(-1.0, -1.0, -h, 1.0, 1.0, h), dt=0.025, max_samples=16)
    field = UniformField(sigma, (0.2, 0.5, 0.9))
    # straight through: length 0.3 = exactly 12 steps
    o = torch.tensor([[0.0, 0.0, 3.0], [0.3, -0.2, -3.0]])
    d = torch.tensor([[0.0, 0.0, -1.0], [0.0, 0.0, 1.0]])
    out = render_rays(field, o, d, config=cfg)
    trans = math.exp(-sigma * 2 * h)
    torch.testing.assert_close(out["alpha"], torch.full((2,), 1 - trans), rtol=0, atol=1e-5)
    torch.testing.assert_close(out["rgb"], torch.tensor([[0.2, 0.5, 0.9]] * 2) * (1 - trans), rtol=0, atol=1e-5)
    assert out["samples"].tolist() == [12, 12]
    # oblique rays: path length 2h / cos(theta); fixed-step quadrature is exact to dt/2
    angles = torch.linspace(0.0, 0.6, 7)
    d = torch.stack([torch.sin(angles), torch.zeros(7), -torch.cos(angles)], dim=-1)
    o = torch.tensor([[0.0, 0.0, 0.5]]).expand(7, 3).contiguous()
    out = render_rays(field, o, d, config=cfg)
    length = 2 * h / torch.cos(angles)
    n = out["samples"].float()
    torch.testing.assert_close(1 - out["alpha"], torch.exp(-sigma * n * cfg.dt), rtol=0, atol=1e-5)
    assert torch.all((n * cfg.dt - length).abs() <= cfg.dt / 2 + 1e-5)
    err = (1 - out["alpha"] - torch.exp(-sigma * length)).abs()
    assert torch.all(err <= sigma * cfg.dt / 2 * torch.exp(-sigma * (length - cfg.dt)) + 1e-5)


def test_early_termination_and_depth() -> None:
    cfg = RenderConfig(aabb=(-1.0, -1.0, -0.2, 1.0, 1.0, 0.2), dt=0.025, max_samples=16)
    field = UniformField(400.0, (1.0, 1.0, 1.0))  # alpha per sample = 1 - e^-10
    o, d = torch.tensor([[0.0, 0.0, 3.0]]), torch.tensor([[0.0, 0.0, -1.0]])
    out = render_rays(field, o, d, config=cfg)  # gradients on: one pass of 16 samples
    with torch.no_grad():
        staged = render_rays(field, o, d, config=cfg)  # passes of 4, stops after the first
    assert staged["samples"].item() == 4 and out["samples"].item() == 16
    for k in ("alpha", "depth", "rgb"):
        torch.testing.assert_close(staged[k], out[k].detach(), rtol=0, atol=1e-6)
    # T after the first sample = e^-10 < 1e-4: the ray stops there (torch-ngp's rule)
    a = 1 - math.exp(-10.0)
    assert out["alpha"].item() == pytest.approx(a, abs=1e-6)
    assert out["depth"].item() == pytest.approx(a * 2.8125, abs=1e-5)


def test_opaque_sphere_silhouette_matches_analytic() -> None:
    radius, dist = 0.4, 4.0
    field = BlobField(1e4, (radius, radius, radius))
    intr = Intrinsics(fx=200.0, fy=200.0, cx=32.0, cy=32.0, height=64, width=64)
    c2w = look_at_origin(dist)[None]
    occ = OccupancyGrid(resolution=64)
    occ.update(lambda x: field.density(x, None, torch.zeros(x.shape[0], dtype=torch.long)), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        out = render_frames(field, c2w, intr, None, occ, background=torch.zeros(64, 64, 3))
    alpha = out["head_alpha"][0]
    o, d = get_rays(c2w, intr)
    o, d = o[0], d[0]
    closest = (o * d).sum(-1, keepdim=True)  # distance from ray to the sphere centre
    rho = (o - closest * d).norm(dim=-1).reshape(64, 64)
    analytic = rho < radius
    rendered = alpha > 0.5
    assert analytic.sum() > 300  # a real disc, ~0.4/4*200 = 20 px radius
    wrong = rendered != analytic
    assert torch.all((rho[wrong] - radius).abs() < 2e-3), "mismatch away from the silhouette edge"
    assert torch.all(alpha[analytic & (rho < radius - 2e-3)] > 0.999)
    assert torch.all(alpha[~analytic] == 0)


def test_pruning_with_correct_occupancy_changes_image_below_1e3() -> None:
    field = BlobField(30.0, (0.5, 0.35, 0.4))
    intr = Intrinsics(fx=150.0, fy=150.0, cx=24.0, cy=24.0, height=48, width=48)
    c2w = torch.stack([look_at_origin(3.0), look_at_origin(3.0)])
    rot = torch.tensor([[1.0, 0, 0], [0, math.cos(0.4), -math.sin(0.4)], [0, math.sin(0.4), math.cos(0.4)]])
    c2w[1, :3] = rot @ c2w[1, :3]  # second frame: camera orbited 0.4 rad about x
    bg = torch.rand(48, 48, 3, generator=torch.Generator().manual_seed(2))
    occ = OccupancyGrid()
    occ.update(lambda x: field.density(x, None, torch.zeros(x.shape[0], dtype=torch.long)), generator=torch.Generator().manual_seed(1))
    assert 0.05 < occ.occupied_fraction() < 0.5
    full = RenderConfig(max_samples=256)  # every step along every ray, no grid
    with torch.no_grad():
        ref = render_frames(field, c2w, intr, None, None, bg, config=full)
        pruned = render_frames(field, c2w, intr, None, occ, bg)
    assert (ref["head_alpha"] > 0.5).sum() > 500
    assert float((pruned["image"] - ref["image"]).abs().max()) < 1e-3
    assert float(pruned["samples"].float().mean()) < 0.5 * float(ref["samples"].float().mean())


def test_marching_kernel_matches_reference() -> None:
    if not cpu_kernels.available():
        pytest.skip("no C++ compiler here")
    gen = torch.Generator().manual_seed(5)
    r = 2000
    o = torch.randn(r, 3, generator=gen) * 0.5 + torch.tensor([0.0, 3.0, 0.0])
    d = torch.nn.functional.normalize(-o + torch.randn(r, 3, generator=gen) * 0.3, dim=-1)
    aabb = torch.tensor([-1.0, -0.5, -1.0, 1.0, 0.5, 1.0])
    from services.renderer.rays import intersect_aabb

    near, far, _ = intersect_aabb(o, d, aabb)
    occ = torch.rand(32, 32, 32, generator=gen) < 0.2
    jitter = torch.rand(r, generator=gen)
    t_ref, n_ref = march_reference(o, d, near, far, jitter, occ, aabb, 0.027, 16)
    t_c, n_c = cpu_kernels.march(o, d, near, far, jitter, occ, aabb, 0.027, 16)
    assert torch.equal(n_c, n_ref) and n_ref.sum() > 1000 and n_ref.max() == 16
    assert torch.equal(t_c, t_ref)


def test_chunking_and_gradients() -> None:
    field = BlobField(5.0, (0.5, 0.4, 0.4))
    intr = Intrinsics(fx=40.0, fy=40.0, cx=8.0, cy=8.0, height=16, width=16)
    c2w = look_at_origin(3.0)[None]
    o, d = get_rays(c2w, intr)
    a = render_rays(field, o[0], d[0], config=RenderConfig(chunk=37))
    b = render_rays(field, o[0], d[0], config=RenderConfig(chunk=1 << 15))
    for k in ("rgb", "alpha", "depth"):
        torch.testing.assert_close(a[k], b[k])
    # gradients reach a learnable density through compositing
    s = torch.tensor(5.0, requires_grad=True)

    class Learnable(BlobField):
        def forward(self, x: Tensor, dd: Tensor, cond: object, frame: Tensor) -> dict[str, Tensor]:
            out = super().forward(x, dd, cond, frame)
            out["sigma"] = out["sigma"] / 5.0 * s
            return out

    out = render_rays(Learnable(5.0, (0.5, 0.4, 0.4)), o[0], d[0])
    out["alpha"].sum().backward()
    assert s.grad is not None and s.grad > 0
