"""A small z-buffered triangle rasteriser in numpy (CPU, no GL context).

Vertices come in pixel-centre coordinates (pixel (row i, col j) is centred at x = j,
y = i) with a depth each; every triangle is tested against the pixel centres of its
bounding box, all triangles of a similar size at once (one k×k window per triangle,
k a power of two), and the nearest covering triangle wins each pixel. Out come, per
pixel, the triangle index (−1 where none) and the screen-space barycentric weights,
from which any vertex attribute is interpolated (`interpolate`). Screen-space weights
are exact for the small triangles of a dense grid mesh; no perspective correction.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Triangles with a bounding box larger than this (pixels) are dropped: a stretched sliver.
MAX_WINDOW = 64


@dataclass(frozen=True)
class Fragments:
    tri: np.ndarray  #: int32 [H,W] covering triangle, −1 where nothing is drawn
    bary: np.ndarray  #: float32 [H,W,3] barycentric weights of that triangle's vertices

    @property
    def covered(self) -> np.ndarray:
        return self.tri >= 0


def rasterize(xy: np.ndarray, depth: np.ndarray, tris: np.ndarray, height: int, width: int) -> Fragments:
    """Nearest-triangle coverage of `tris` [T,3] (vertex indices) over vertices `xy` [V,2],
    `depth` [V] (smaller is nearer) on a height×width image."""
    xy = np.asarray(xy, np.float32)
    depth = np.asarray(depth, np.float32)
    tris = np.asarray(tris, np.int64).reshape(-1, 3)
    tri_out = np.full(height * width, -1, np.int32)
    bary_out = np.zeros((height * width, 3), np.float32)
    if not len(tris):
        return Fragments(tri_out.reshape(height, width), bary_out.reshape(height, width, 3))
    p = xy[tris]  # [T,3,2]
    lo = np.ceil(p.min(1) - 1e-6).astype(np.int64)  # first pixel centre inside the box
    hi = np.floor(p.max(1) + 1e-6).astype(np.int64)
    span = (hi - lo + 1).max(1)
    keep = (span >= 1) & (span <= MAX_WINDOW) & (hi[:, 0] >= 0) & (hi[:, 1] >= 0) & \
        (lo[:, 0] < width) & (lo[:, 1] < height)
    area = ((p[:, 1, 0] - p[:, 0, 0]) * (p[:, 2, 1] - p[:, 0, 1])
            - (p[:, 2, 0] - p[:, 0, 0]) * (p[:, 1, 1] - p[:, 0, 1]))
    keep &= np.abs(area) > 1e-9
    pix_all, key_all, tri_all, bary_all = [], [], [], []
    k_of = np.maximum(1, 2 ** np.ceil(np.log2(np.maximum(span, 1)))).astype(np.int64)
    for k in np.unique(k_of[keep]):
        sel = np.flatnonzero(keep & (k_of == k))
        oy, ox = np.mgrid[0:k, 0:k]
        px = lo[sel, 0, None] + ox.reshape(1, -1)  # [n,k²]
        py = lo[sel, 1, None] + oy.reshape(1, -1)
        a, b, c = p[sel, 0], p[sel, 1], p[sel, 2]
        inv = 1.0 / area[sel]
        fx, fy = px.astype(np.float32), py.astype(np.float32)
        # weight of vertex a = signed area of (b, c, pixel) / area, and so on
        w0 = ((c[:, 0, None] - b[:, 0, None]) * (fy - b[:, 1, None])
              - (c[:, 1, None] - b[:, 1, None]) * (fx - b[:, 0, None])) * inv[:, None]
        w1 = ((a[:, 0, None] - c[:, 0, None]) * (fy - c[:, 1, None])
              - (a[:, 1, None] - c[:, 1, None]) * (fx - c[:, 0, None])) * inv[:, None]
        w2 = 1.0 - w0 - w1
        inside = (w0 >= -1e-5) & (w1 >= -1e-5) & (w2 >= -1e-5) & (px >= 0) & (py >= 0) & \
            (px < width) & (py < height)
        rows, cols = np.nonzero(inside)
        if not len(rows):
            continue
        t = sel[rows]
        bw = np.stack([w0[rows, cols], w1[rows, cols], w2[rows, cols]], -1)
        z = (bw * depth[tris[t]]).sum(-1)
        pix_all.append(py[rows, cols] * width + px[rows, cols])
        key_all.append(z)
        tri_all.append(t)
        bary_all.append(bw)
    if not pix_all:
        return Fragments(tri_out.reshape(height, width), bary_out.reshape(height, width, 3))
    pix = np.concatenate(pix_all)
    z = np.concatenate(key_all)
    t = np.concatenate(tri_all)
    bw = np.concatenate(bary_all)
    order = np.lexsort((z, pix))  # by pixel, nearest first
    pix, t, bw = pix[order], t[order], bw[order]
    first = np.ones(len(pix), bool)
    first[1:] = pix[1:] != pix[:-1]
    tri_out[pix[first]] = t[first]
    bary_out[pix[first]] = np.clip(bw[first], 0.0, 1.0)
    return Fragments(tri_out.reshape(height, width), bary_out.reshape(height, width, 3))


def interpolate(frags: Fragments, tris: np.ndarray, attr: np.ndarray, fill: float = 0.0) -> np.ndarray:
    """Vertex attribute [V,C] (or [V]) at every pixel: [H,W,C] (or [H,W]); `fill` where uncovered."""
    attr = np.asarray(attr, np.float32)
    flat = attr.reshape(len(attr), -1)
    h, w = frags.tri.shape
    out = np.full((h * w, flat.shape[1]), fill, np.float32)
    cov = frags.tri.reshape(-1) >= 0
    idx = np.asarray(tris)[frags.tri.reshape(-1)[cov]]  # [n,3]
    out[cov] = np.einsum("nk,nkc->nc", frags.bary.reshape(-1, 3)[cov], flat[idx])
    return out.reshape((h, w) + attr.shape[1:])


def sample_bilinear(image: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """image [H,W,C] at pixel-centre coordinates x, y (any equal shapes), edges clamped."""
    h, w = image.shape[:2]
    x = np.clip(x, 0, w - 1)
    y = np.clip(y, 0, h - 1)
    x0 = np.minimum(np.floor(x).astype(np.int64), w - 2 if w > 1 else 0)
    y0 = np.minimum(np.floor(y).astype(np.int64), h - 2 if h > 1 else 0)
    fx = (x - x0)[..., None].astype(np.float32)
    fy = (y - y0)[..., None].astype(np.float32)
    x1, y1 = np.minimum(x0 + 1, w - 1), np.minimum(y0 + 1, h - 1)
    img = image.astype(np.float32, copy=False)
    top = img[y0, x0] * (1 - fx) + img[y0, x1] * fx
    bottom = img[y1, x0] * (1 - fx) + img[y1, x1] * fx
    return top * (1 - fy) + bottom * fy


def grid_triangles(valid: np.ndarray) -> np.ndarray:
    """Triangles [T,3] of the pixel grid (vertex index = row·W + col) over cells whose four
    corners are all `valid` [H,W]; two per cell, split along the same diagonal."""
    h, w = valid.shape
    idx = np.arange(h * w).reshape(h, w)
    a, b, c, d = idx[:-1, :-1], idx[:-1, 1:], idx[1:, :-1], idx[1:, 1:]
    ok = valid[:-1, :-1] & valid[:-1, 1:] & valid[1:, :-1] & valid[1:, 1:]
    t1 = np.stack([a[ok], b[ok], c[ok]], -1)
    t2 = np.stack([b[ok], d[ok], c[ok]], -1)
    return np.concatenate([t1, t2]).astype(np.int64)
