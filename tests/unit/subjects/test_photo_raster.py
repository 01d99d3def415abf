"""The numpy rasteriser: coverage, the z-buffer and barycentric attribute lookup."""

from __future__ import annotations

import numpy as np

from services.subjects.photo.raster import grid_triangles, interpolate, rasterize, sample_bilinear


def test_triangle_covers_its_pixel_centres_only() -> None:
    xy = np.array([[1.0, 1.0], [6.0, 1.0], [1.0, 6.0]])
    frags = rasterize(xy, np.zeros(3), np.array([[0, 1, 2]]), 8, 8)
    yy, xx = np.mgrid[0:8, 0:8]
    inside = (xx >= 1) & (yy >= 1) & (xx + yy <= 7)
    assert np.array_equal(frags.covered, inside)
    assert np.allclose(frags.bary[frags.covered].sum(-1), 1.0)


def test_nearer_triangle_wins_whatever_the_order() -> None:
    xy = np.array([[0.0, 0.0], [7.0, 0.0], [0.0, 7.0]] * 2)
    depth = np.array([5.0, 5.0, 5.0, 2.0, 2.0, 2.0])
    for tris in (np.array([[0, 1, 2], [3, 4, 5]]), np.array([[3, 4, 5], [0, 1, 2]])):
        frags = rasterize(xy, depth, tris, 8, 8)
        near = np.flatnonzero((tris == 3).any(1))[0]
        assert (frags.tri[frags.covered] == near).all()


def test_identity_grid_looks_up_every_pixel_exactly() -> None:
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (12, 10, 3)).astype(np.float32)
    tris = grid_triangles(np.ones((12, 10), bool))
    yy, xx = np.mgrid[0:12, 0:10]
    xy = np.stack([xx, yy], -1).reshape(-1, 2).astype(np.float64)
    frags = rasterize(xy, np.ones(len(xy)), tris, 12, 10)
    assert frags.covered.all()
    uv = interpolate(frags, tris, xy)
    assert np.allclose(sample_bilinear(image, uv[..., 0], uv[..., 1]), image, atol=1e-3)


def test_moved_grid_samples_between_pixels() -> None:
    image = np.zeros((4, 4, 1), np.float32)
    image[:, 2:] = 100.0
    assert sample_bilinear(image, np.array([1.5]), np.array([1.0]))[0, 0] == 50.0
