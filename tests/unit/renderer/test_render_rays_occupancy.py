"""Cameras, rays, AABB intersection, encodings and the occupancy grid."""

from __future__ import annotations

import math

import pytest
import torch

from services.renderer.encodings import FrequencyEncoding, SHEncoding
from services.renderer.occupancy import OccupancyGrid
from services.renderer.rays import Intrinsics, get_rays, intersect_aabb, nerf_matrix_to_ngp


def test_nerf_pose_conversion_and_centre_ray() -> None:
    # transforms.json camera at (0, 0, 1.2) looking down -z (OpenGL), identity rotation
    pose = torch.eye(4)
    pose[2, 3] = 1.2
    c2w = nerf_matrix_to_ngp(pose[None])
    # ER-NeRF: rows permuted (y, z, x), columns 1 and 2 negated, translation x4
    assert torch.allclose(c2w[0, :3, 3], torch.tensor([0.0, 4.8, 0.0]))
    intr = Intrinsics(fx=100.0, fy=100.0, cx=2.0, cy=2.0, height=4, width=4)
    o, d = get_rays(c2w, intr)
    assert o.shape == d.shape == (1, 16, 3)
    assert torch.allclose(d.norm(dim=-1), torch.ones(1, 16))
    # the ray through the principal point looks at the origin (old -z = new -y)
    centre = torch.tensor([[(2.0 - intr.cx) / intr.fx, (2.0 - intr.cy) / intr.fy, 1.0]])
    world = centre @ c2w[0, :3, :3].T
    assert torch.allclose(world / world.norm(), torch.tensor([[0.0, -1.0, 0.0]]), atol=1e-6)
    # pixel (row 0, col 3) is right of and above the centre: OpenGL +x (new z) and +y (new x)
    d03 = d[0, 3]
    assert d03[2] > 0 and d03[0] > 0
    assert intr.resized(8, 8).fx == 200.0 and intr.resized(8, 8).cx == 4.0


def test_aabb_intersection() -> None:
    aabb = torch.tensor([-1.0, -0.5, -1.0, 1.0, 0.5, 1.0])
    o = torch.tensor([[0.0, 3.0, 0.0], [0.0, 3.0, 0.0], [0.0, 0.0, 0.0], [5.0, 5.0, 5.0]])
    d = torch.tensor([[0.0, -1.0, 0.0], [0.0, 1.0, 0.0], [1.0, 0.0, 0.0], [1.0, 0.0, 0.0]])
    near, far, hit = intersect_aabb(o, d, aabb, min_near=0.05)
    assert hit.tolist() == [True, False, True, False]
    assert near[0].item() == pytest.approx(2.5) and far[0].item() == pytest.approx(3.5)
    assert near[2].item() == pytest.approx(0.05) and far[2].item() == pytest.approx(1.0)  # starts inside
    assert torch.all(near[~hit] == far[~hit])


def test_sh_encoding_known_values_and_orthonormality() -> None:
    sh = SHEncoding()
    up = sh(torch.tensor([[0.0, 0.0, 1.0]]))[0]
    expected = torch.zeros(16)
    expected[0] = 0.28209479177387814
    expected[2] = 0.48860251190291987
    expected[6] = 0.94617469575755997 - 0.31539156525251999
    expected[12] = 0.3731763325901154 * 2.0
    torch.testing.assert_close(up, expected)
    # real SH are orthonormal on the sphere: E[Y Y^T] * 4 pi = I (Monte Carlo)
    d = torch.nn.functional.normalize(torch.randn(200_000, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64), dim=-1)
    y = sh(d)
    gram = y.T @ y / d.shape[0] * 4 * math.pi
    torch.testing.assert_close(gram, torch.eye(16, dtype=torch.float64), rtol=0, atol=0.03)


def test_frequency_encoding_layout() -> None:
    enc = FrequencyEncoding(2, 3)
    x = torch.tensor([[0.3, -0.7]])
    out = enc(x)
    assert out.shape == (1, enc.output_dim) == (1, 14)
    expected = [0.3, -0.7]
    for f in (1.0, 2.0, 4.0):
        expected += [math.sin(0.3 * f), math.sin(-0.7 * f), math.cos(0.3 * f), math.cos(-0.7 * f)]
    torch.testing.assert_close(out[0], torch.tensor(expected))


def test_occupancy_max_over_conditions_with_decay() -> None:
    occ = OccupancyGrid(resolution=16, decay=0.5, threshold=10.0)
    centers = occ.cell_centers()
    left = (centers[:, 0] < 0).reshape(16, 16, 16)
    # condition A: dense on the left; condition B: dense on the right
    occ.update(lambda x: torch.where(x[:, 0] < 0, 100.0, 0.0), dilate=False)
    assert torch.equal(occ.mask, left)
    occ.update(lambda x: torch.where(x[:, 0] >= 0, 100.0, 0.0), dilate=False)
    # the maximum over conditions keeps both halves (left decayed to 50 > threshold)
    assert occ.mask.all()
    assert torch.allclose(occ.density[left], torch.full_like(occ.density[left], 50.0))
    for _ in range(4):  # left keeps decaying 50 -> 3.1, right stays 100; mean ~51.6 -> thr 10
        occ.update(lambda x: torch.where(x[:, 0] >= 0, 100.0, 0.0), dilate=False)
    assert torch.equal(occ.mask, ~left)
    # lookups by world position
    assert occ.occupied(torch.tensor([[0.5, 0.0, 0.0], [-0.5, 0.0, 0.0]])).tolist() == [True, False]


def test_occupancy_dilation_and_unseen_cells() -> None:
    occ = OccupancyGrid(resolution=16)
    half = torch.tensor([0.2, 0.1, 0.2])
    occ.update(lambda x: torch.where((x.abs() < half).all(-1), 100.0, 0.0), dilate=False)
    core = int(occ.mask.sum())
    occ2 = OccupancyGrid(resolution=16)
    occ2.update(lambda x: torch.where((x.abs() < half).all(-1), 100.0, 0.0), generator=torch.Generator().manual_seed(0))
    assert 8 <= core < int(occ2.mask.sum()) <= 6**3  # dilation grows the blob by one cell
    # one camera looking at the origin along -y from y = 3 with a narrow field of view
    c2w = torch.eye(4)
    c2w[:3, 0] = torch.tensor([0.0, 0.0, 1.0])
    c2w[:3, 1] = torch.tensor([-1.0, 0.0, 0.0])
    c2w[:3, 2] = torch.tensor([0.0, -1.0, 0.0])
    c2w[:3, 3] = torch.tensor([0.0, 3.0, 0.0])
    intr = Intrinsics(fx=400.0, fy=400.0, cx=32.0, cy=32.0, height=64, width=64)  # sees |x|,|z| < ~0.2
    unseen = occ.mark_unseen(c2w[None], intr)
    assert 0.8 * 16**3 < unseen < 16**3
    assert (occ.density < 0).sum() == unseen
    corner = torch.tensor([[0.9, 0.0, 0.9]])
    assert not occ.occupied(corner).item()
    # unseen cells stay empty whatever later updates say
    occ.update(lambda x: torch.full((x.shape[0],), 100.0))
    assert int(occ.mask.sum()) == 16**3 - unseen
