"""The inside of the mouth the photo never showed (the LipaintNet role), painted in the
frame between the moved inner lips: a dark cavity, the tongue low in it, the lower and
upper teeth under the lips, coloured from the photo's own lips, skin and teeth."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Visible tooth heights (upper, lower) as shares of the mouth's outer width.
UPPER_TEETH, LOWER_TEETH = 0.13, 0.07
#: Tooth width (incisors) as a share of the mouth's outer width.
TOOTH_WIDTH = 0.12


@dataclass(frozen=True)
class MouthColours:
    cavity: np.ndarray  #: float32 [3]
    tongue: np.ndarray
    teeth: np.ndarray

    @classmethod
    def from_photo(cls, lips: np.ndarray, skin: np.ndarray, photo_teeth: np.ndarray | None) -> "MouthColours":
        """From the photo's lip pixels [N,3], skin pixels [M,3] and, where its mouth is
        open, the pixels between its lips (their brightest are its teeth)."""
        lip = np.median(lips.astype(np.float32), 0)
        skin_c = np.median(skin.astype(np.float32), 0)
        light = float(np.clip(skin_c.mean() / 160.0, 0.5, 1.3))
        teeth = np.array([236, 232, 220], np.float32) * light ** 0.4
        if photo_teeth is not None and len(photo_teeth) >= 20:
            px = photo_teeth.astype(np.float32)
            bright = px[px.sum(1) >= np.percentile(px.sum(1), 70)]
            teeth = 0.5 * teeth + 0.5 * np.median(bright, 0)
        return cls(cavity=lip * 0.22, tongue=lip * 0.8 + np.array([12, -4, -4], np.float32),
                   teeth=np.clip(teeth, 0, 255))


def paint_interior(image: np.ndarray, upper: np.ndarray, lower: np.ndarray, mouth_width: float,
                   colours: MouthColours) -> np.ndarray:
    """Paint into float32 `image` [H,W,3] between the inner-lip curves `upper`, `lower`
    ([K,2] frame pixels, corner to corner); returns the bool mask painted."""
    h, w = image.shape[:2]
    pts = np.concatenate([upper, lower])
    x0, x1 = int(np.floor(pts[:, 0].min())), int(np.ceil(pts[:, 0].max()))
    y0, y1 = int(np.floor(pts[:, 1].min())), int(np.ceil(pts[:, 1].max()))
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, w - 1), min(y1, h - 1)
    mask = np.zeros((h, w), bool)
    if x1 < x0 or y1 < y0:
        return mask
    ou, ol = np.argsort(upper[:, 0]), np.argsort(lower[:, 0])
    xs = np.arange(x0, x1 + 1, dtype=np.float64)
    top = np.interp(xs, upper[ou, 0], upper[ou, 1])
    bottom = np.interp(xs, lower[ol, 0], lower[ol, 1])
    ys = np.arange(y0, y1 + 1, dtype=np.float64)[:, None]
    lo_x, hi_x = max(upper[:, 0].min(), lower[:, 0].min()), min(upper[:, 0].max(), lower[:, 0].max())
    inside = (ys > top[None] - 0.5) & (ys < bottom[None] + 0.5) & (xs[None] >= lo_x) & (xs[None] <= hi_x)
    if not inside.any():
        return mask
    centre = (lo_x + hi_x) / 2
    half = max((hi_x - lo_x) / 2, 1.0)
    across = np.abs(xs - centre)[None] / half  # 0 centre … 1 corner
    gap = np.maximum(bottom - top, 0)[None]
    region = np.empty(inside.shape + (3,), np.float32)
    region[:] = colours.cavity
    # the tongue: a low ellipse that fills more of the floor as the mouth opens
    ty = bottom[None] - 0.2 * gap.max()
    tongue = ((xs[None] - centre) / (0.65 * half)) ** 2 + ((ys - ty) / max(0.45 * gap.max(), 1.0)) ** 2 < 1
    region[tongue] = colours.tongue
    # teeth, shaded towards the corners, with dark lines between incisors
    shade = (1 - 0.55 * across ** 2)[..., None]
    tooth = TOOTH_WIDTH * mouth_width
    seams = np.abs(((xs - centre) / tooth + 0.5) % 1.0 - 0.5)[None] * tooth < 0.35
    for edge, height, sign, dim in ((bottom, LOWER_TEETH, -1, 0.8), (top, UPPER_TEETH, 1, 1.0)):
        depth = sign * (ys - edge[None])  # px from the lip edge into the mouth
        band = (depth >= -0.5) & (depth < height * mouth_width * np.sqrt(np.clip(1 - across ** 2, 0, 1))) & \
            (across < 0.85)
        col = colours.teeth * dim * shade
        col = np.broadcast_to(col, band.shape + (3,))
        region[band] = col[band]
        region[band & seams] *= 0.75
    view = image[y0:y1 + 1, x0:x1 + 1]
    view[inside] = region[inside]
    mask[y0:y1 + 1, x0:x1 + 1] = inside
    return mask
