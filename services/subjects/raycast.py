"""Exact ray–primitive intersections, vectorised over rays (numpy float32).

Rays are component-major: origins and unit directions as [3, N] arrays (an origin
may be [3, 1] when all rays share it). Each function returns distances along the
ray with `inf` where the ray misses. Rigid transforms keep ray parameters, so
distances from different frames (head, body) compare directly.
"""

from __future__ import annotations

import numpy as np

INF = np.float32(np.inf)


def rotation_xyz(pitch: float, yaw: float, roll: float) -> np.ndarray:
    """R = Ry(yaw) · Rx(pitch) · Rz(roll) (radians); pitch > 0 turns the face (+z) downward."""
    cx, sx = np.cos(pitch), np.sin(pitch)
    cy, sy = np.cos(yaw), np.sin(yaw)
    cz, sz = np.cos(roll), np.sin(roll)
    rx = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rz = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    return ry @ rx @ rz


def apply(m: np.ndarray, v: np.ndarray) -> np.ndarray:
    """m [3,3] · v [3, N], written out per component (much faster than matmul for K=3)."""
    m = np.asarray(m, np.float32)
    return np.stack([m[i, 0] * v[0] + m[i, 1] * v[1] + m[i, 2] * v[2] for i in range(3)])


def transform_rays(m: np.ndarray, origin: np.ndarray, dirs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Apply a rigid 4×4 transform to rays ([3,1] or [3,N] origins, [3,N] directions)."""
    t = np.asarray(m[:3, 3], np.float32)[:, None]
    return apply(m[:3, :3], origin) + t, apply(m[:3, :3], dirs)


def ellipsoid(o: np.ndarray, d: np.ndarray, center, axes, rot: np.ndarray | None = None
              ) -> tuple[np.ndarray, np.ndarray]:
    """(t_near, t_far) of rays against an ellipsoid; `rot` maps local axes to the frame."""
    c = np.asarray(center, np.float32)[:, None]
    inv_a = (1.0 / np.asarray(axes, np.float32))[:, None]
    lo, ld = o - c, d
    if rot is not None:
        rt = np.asarray(rot, np.float32).T
        lo, ld = apply(rt, lo), apply(rt, ld)
    lo = lo * inv_a
    ld = ld * inv_a
    qa = ld[0] * ld[0] + ld[1] * ld[1] + ld[2] * ld[2]
    qb = lo[0] * ld[0] + lo[1] * ld[1] + lo[2] * ld[2]
    qc = lo[0] * lo[0] + lo[1] * lo[1] + lo[2] * lo[2] - 1.0
    disc = qb * qb - qa * qc
    hit = disc > 0
    s = np.sqrt(np.maximum(disc, 0.0))
    inv = 1.0 / qa
    t0 = np.where(hit, (-qb - s) * inv, INF)
    t1 = np.where(hit, (-qb + s) * inv, INF)
    return t0.astype(np.float32, copy=False), t1.astype(np.float32, copy=False)


def ellipsoid_normal(p: np.ndarray, center, axes, rot: np.ndarray | None = None) -> np.ndarray:
    """Outward unit normals [3,N] at surface points p [3,N]."""
    c = np.asarray(center, np.float32)[:, None]
    a = np.asarray(axes, np.float32)[:, None]
    lp = p - c
    if rot is not None:
        lp = apply(np.asarray(rot).T, lp)
    n = lp / (a * a)
    if rot is not None:
        n = apply(rot, n)
    return n / np.maximum(np.sqrt((n * n).sum(0)), 1e-12)


def y_cylinder(o: np.ndarray, d: np.ndarray, center_xz, radii_xz, y_range) -> np.ndarray:
    """Nearest hit on the side of an elliptic cylinder around the y axis, clipped to y_range."""
    cx, cz = center_xz
    rx, rz = radii_xz
    ox, oz = (o[0] - cx) / rx, (o[2] - cz) / rz
    dx, dz = d[0] / rx, d[2] / rz
    qa = dx * dx + dz * dz
    qb = ox * dx + oz * dz
    qc = ox * ox + oz * oz - 1.0
    disc = qb * qb - qa * qc
    ok = (disc > 0) & (qa > 1e-12)
    s = np.sqrt(np.maximum(disc, 0.0))
    qa = np.where(ok, qa, 1.0)
    out = np.full(d.shape[1], INF, np.float32)
    for t in ((-qb - s) / qa, (-qb + s) / qa):
        y = o[1] + t * d[1]
        good = ok & (t > 0) & (y >= y_range[0]) & (y <= y_range[1]) & (out == INF)
        out = np.where(good, t, out)
    return out


def y_cylinder_normal(p: np.ndarray, center_xz, radii_xz) -> np.ndarray:
    cx, cz = center_xz
    rx, rz = radii_xz
    n = np.stack([(p[0] - cx) / (rx * rx), np.zeros_like(p[0]), (p[2] - cz) / (rz * rz)])
    return n / np.maximum(np.sqrt((n * n).sum(0)), 1e-12)


def sphere_bound(o: np.ndarray, d: np.ndarray, center, radius: float) -> np.ndarray:
    """Boolean mask of rays that touch a bounding sphere (cheap culling)."""
    oc = o - np.asarray(center, np.float32)[:, None]
    b = oc[0] * d[0] + oc[1] * d[1] + oc[2] * d[2]
    c = oc[0] * oc[0] + oc[1] * oc[1] + oc[2] * oc[2] - radius * radius
    return b * b - c > 0
