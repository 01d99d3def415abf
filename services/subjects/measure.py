"""Measure the mouth on any frame of the oracle subject (ground truth or a NeRF render).

`eval` needs the mouth opening of rendered frames, which have no exact masks. Inside
the ground-truth lip box (from the oracle's landmarks for that frame) the open mouth
is what is neither skin nor lip: the dark interior and the pale, unsaturated teeth.
"""

from __future__ import annotations

import numpy as np

# Calibrated on the oracle's materials: interior is dark, teeth are bright but grey,
# lips and skin are saturated warm colours.
_DARK_LUMA = 0.36
_TEETH_SAT = 0.16


def mouth_box(landmarks: np.ndarray, size: tuple[int, int], margin: float = 2.0) -> tuple[int, int, int, int]:
    """(x0, y0, x1, y1) pixel box around the outer lips (landmarks 48–59), clipped to the image."""
    lips = np.asarray(landmarks)[48:60]
    h, w = size
    x0, y0 = np.floor(lips.min(0) - margin).astype(int)
    x1, y1 = np.ceil(lips.max(0) + margin).astype(int) + 1
    return max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)


def mouth_interior_mask(image: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """bool [H,W]: open-mouth pixels (interior and teeth) inside the lip box."""
    x0, y0, x1, y1 = mouth_box(landmarks, image.shape[:2])
    crop = image[y0:y1, x0:x1].astype(np.float32) / 255.0
    luma = crop @ np.array([0.299, 0.587, 0.114], np.float32)
    hi, lo = crop.max(-1), crop.min(-1)
    sat = (hi - lo) / np.maximum(hi, 1e-6)
    inside = (luma < _DARK_LUMA) | ((sat < _TEETH_SAT) & (luma > 0.45))
    mask = np.zeros(image.shape[:2], bool)
    mask[y0:y1, x0:x1] = inside
    return mask


def mouth_gap_px(image: np.ndarray, landmarks: np.ndarray) -> float:
    """Vertical mouth opening in pixels: open-mouth pixels per column, over the centre columns."""
    mask = mouth_interior_mask(image, landmarks)
    lm = np.asarray(landmarks)
    xs = np.arange(int(np.floor(lm[61, 0])), int(np.ceil(lm[63, 0])) + 1)
    xs = xs[(xs >= 0) & (xs < image.shape[1])]
    if not len(xs):
        return 0.0
    return float(np.median(mask[:, xs].sum(0)))
