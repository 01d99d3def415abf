"""Blink track from FaceMesh's eyelids: eye closure in [0, 1] per frame (au.csv AU45).

The eye aspect ratio (mean lid gap over eye width, both eyes) of a shut eye is about a
tenth of an open one's on FaceMesh; the subject's median ratio is "open". Frames opened
wider than the median read 0, a shut eye 1.
"""

from __future__ import annotations

import numpy as np

#: (outer corner, inner corner, upper lid points, lower lid points) for each eye.
_EYES = ((33, 133, (160, 159, 158), (144, 145, 153)), (263, 362, (387, 386, 385), (373, 374, 380)))
#: Eye aspect ratio of a shut eye, as a fraction of the open one.
CLOSED_RATIO = 0.1


def eye_aspect(mesh: np.ndarray) -> np.ndarray:
    """[N] mean eye aspect ratio of both eyes from FaceMesh points [N,478,≥2]."""
    p = np.asarray(mesh, np.float64)[..., :2]
    out = np.zeros(len(p))
    for outer, inner, upper, lower in _EYES:
        gap = sum(np.linalg.norm(p[:, u] - p[:, l], axis=1) for u, l in zip(upper, lower)) / len(upper)
        out += gap / np.maximum(np.linalg.norm(p[:, outer] - p[:, inner], axis=1), 1e-6)
    return out / len(_EYES)


def blink_track(mesh: np.ndarray) -> np.ndarray:
    """[N] float32 eye closure: 0 open (the subject's median) … 1 shut."""
    ratio = eye_aspect(mesh)
    open_ = max(float(np.median(ratio)), 1e-6)
    return np.clip((open_ - ratio) / (open_ * (1 - CLOSED_RATIO)), 0.0, 1.0).astype(np.float32)


def eyes_closing(blink: np.ndarray, threshold: float = 0.3) -> np.ndarray:
    """bool [N]: frames of a blink and the frame either side (FaceMesh distorts the whole
    face while the eyes shut, so their head poses are not trusted)."""
    closing = np.asarray(blink) > threshold
    return np.convolve(closing, np.ones(3), mode="same") > 0
