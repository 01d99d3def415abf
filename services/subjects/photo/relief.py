"""Depth of every person pixel of the photo (metres, camera forward): the face from its
lifted FaceMesh points, the rest of the person (hair, ears, neck, shoulders) a rounded
relief of the person's silhouette, joined to the face without a step."""

from __future__ import annotations

import numpy as np
from scipy.interpolate import LinearNDInterpolator
from scipy.ndimage import distance_transform_edt, gaussian_filter

#: The silhouette relief: how deep the body rounds off and over what distance from its edge (metres).
RELIEF_DEPTH_M, RELIEF_REACH_M = 0.09, 0.09
#: The person's outline lies this far behind the head's centre (metres).
OUTLINE_BEHIND_M = 0.05


def _blur_fill(values: np.ndarray, known: np.ndarray, sigma: float) -> np.ndarray:
    """Normalised Gaussian blur: `values` spread from `known` pixels into the others."""
    num = gaussian_filter(np.where(known, values, 0.0), sigma, mode="nearest")
    den = gaussian_filter(known.astype(np.float64), sigma, mode="nearest")
    return num / np.maximum(den, 1e-6)


def depth_map(lifted: np.ndarray, mesh_grid: np.ndarray, person: np.ndarray, head_centre_z: float,
              metres_per_px: float, face_h_px: float) -> np.ndarray:
    """float64 [S,S] camera depth: `lifted` [478,3] FaceMesh points in camera metres,
    `mesh_grid` [478,≥2] the same points in grid pixels, `person` bool [S,S]."""
    s = person.shape[0]
    yy, xx = np.mgrid[0:s, 0:s].astype(np.float64)
    face = LinearNDInterpolator(mesh_grid[:468, :2], lifted[:468, 2])(xx, yy)
    in_face = np.isfinite(face)
    # the silhouette relief: a quarter-round bevel from the outline inwards
    edge = distance_transform_edt(person) * metres_per_px
    t = np.clip(edge / RELIEF_REACH_M, 0, 1)
    body = head_centre_z + OUTLINE_BEHIND_M - RELIEF_DEPTH_M * np.sqrt(1 - (1 - t) ** 2)
    # the face's offset from the relief, carried out past the face and fading with distance
    offset = np.where(in_face, face - body, 0.0)
    spread = _blur_fill(offset, in_face, 0.15 * face_h_px)
    outside = distance_transform_edt(~in_face)
    fade = np.exp(-(outside / (0.35 * face_h_px)) ** 2)
    z = body + np.where(in_face, offset, spread * fade)
    # smooth the seam between the face and the rest; the face keeps its own shape
    core = gaussian_filter((distance_transform_edt(in_face) > 0.04 * face_h_px).astype(np.float64), 2.0)
    return core * z + (1 - core) * gaussian_filter(z, 2.0, mode="nearest")
