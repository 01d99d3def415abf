"""One fixed square crop for the whole video that holds head, neck and shoulders.

ER-NeRF trains on a static camera framing: the crop is chosen once from the face's
extent over every frame, never per frame (that would move the camera). It aims for a
square about 2.1 face heights tall with the forehead a fifth of the way down; inside a
small or tight frame it shrinks to what fits, down to 1.5 face heights, and only below
that pads the picture out (edge pixels repeated) — portrait, landscape and close-ups alike.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Crop side in face heights (forehead landmark to chin): wanted, and least before padding.
TARGET_FACES, MIN_FACES = 2.1, 1.5
#: Where the top of the face mesh sits, as a fraction of the crop side from its top.
FOREHEAD_AT = 0.2


@dataclass(frozen=True)
class Crop:
    """The square [x0, x0+side) × [y0, y0+side) of the upright source, resized to `size`."""

    x0: int
    y0: int
    side: int
    size: int
    source_width: int
    source_height: int

    @property
    def scale(self) -> float:
        return self.size / self.side

    @property
    def padded(self) -> bool:
        return (self.x0 < 0 or self.y0 < 0 or self.x0 + self.side > self.source_width
                or self.y0 + self.side > self.source_height)

    def points(self, pts: np.ndarray) -> np.ndarray:
        """Source-pixel points [..., 2 or 3] (continuous coordinates) → crop pixels; z scales like x."""
        out = np.array(pts, np.float64)
        out[..., 0] -= self.x0
        out[..., 1] -= self.y0
        out[..., :3] *= self.scale
        return out

    def principal_point(self) -> tuple[float, float]:
        """The source's optical centre (its picture centre) in crop pixels."""
        c = self.points(np.array([self.source_width / 2.0, self.source_height / 2.0]))
        return float(c[0]), float(c[1])

    def apply(self, rgb: np.ndarray) -> np.ndarray:
        """Upright source frame [H,W,3] → uint8 [size,size,3]."""
        import cv2

        h, w = rgb.shape[:2]
        x0, y0, x1, y1 = self.x0, self.y0, self.x0 + self.side, self.y0 + self.side
        region = rgb[max(y0, 0):min(y1, h), max(x0, 0):min(x1, w)]
        if self.padded:
            region = cv2.copyMakeBorder(region, max(0, -y0), max(0, y1 - h), max(0, -x0), max(0, x1 - w),
                                        cv2.BORDER_REPLICATE)
        interp = cv2.INTER_AREA if self.side > self.size else cv2.INTER_CUBIC
        return cv2.resize(np.ascontiguousarray(region), (self.size, self.size), interpolation=interp)

    def as_dict(self) -> dict:
        return {"x0": self.x0, "y0": self.y0, "side": self.side, "size": self.size, "padded": self.padded,
                "source": [self.source_width, self.source_height]}


def _place(lo: float, hi: float, want: float, side: int, frame: int) -> int:
    """Start of a `side`-long window that starts near `want`, stays inside [0, frame) when it
    can and always covers [lo, hi] when that fits."""
    start = want
    if side <= frame:
        start = min(max(start, 0), frame - side)
    start = min(start, lo)  # keep the face inside even if that leaves the frame
    start = max(start, hi - side)
    return int(round(start))


def choose_crop(points: np.ndarray, width: int, height: int, size: int) -> Crop:
    """The crop for FaceMesh points [N,478,3] (source pixels) of a `width`×`height` video."""
    xy = points[:, :, :2]
    lo, hi = xy.min(1), xy.max(1)  # per-frame face boxes
    face_h = float(np.median(hi[:, 1] - lo[:, 1]))
    # the face's extent over the video (ignoring the odd outlier frame), with a margin
    margin = 0.1 * face_h
    x_lo, y_lo = np.percentile(lo, 1, axis=0) - margin
    x_hi, y_hi = np.percentile(hi, 99, axis=0) + margin
    side = TARGET_FACES * face_h
    side = max(min(side, width, height), MIN_FACES * face_h, x_hi - x_lo, y_hi - y_lo)
    side = int(round(side))
    centre_x = float(np.median((lo[:, 0] + hi[:, 0]) / 2))
    top = float(np.median(lo[:, 1]))
    x0 = _place(x_lo, x_hi, centre_x - side / 2, side, width)
    y0 = _place(y_lo, y_hi, top - FOREHEAD_AT * side, side, height)
    return Crop(x0, y0, side, size, width, height)
