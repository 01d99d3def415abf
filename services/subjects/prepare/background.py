"""The clean background (bc.jpg): each pixel's median over sampled frames where it shows
background, the person's outline widened by a margin first; pixels the person never
uncovers are inpainted (cv2.inpaint, Telea)."""

from __future__ import annotations

import warnings

import numpy as np

from services.subjects.layout import LABEL_BG

#: Frames kept for the median (evenly spread over the video).
MAX_SAMPLES = 64
#: Margin around the person (fraction of the frame side) not trusted as background.
MARGIN = 0.02


class BackgroundBuilder:
    """Collect `add(k, frame, labels)` for the frames `wants(k)`, then `build()`."""

    def __init__(self, n_frames: int, size: int) -> None:
        self.step = max(1, int(np.ceil(n_frames / MAX_SAMPLES)))
        self.size = size
        self.frames: list[np.ndarray] = []
        self.masks: list[np.ndarray] = []

    def wants(self, k: int) -> bool:
        return k % self.step == 0

    def add(self, frame: np.ndarray, labels: np.ndarray) -> None:
        import cv2

        r = max(1, int(round(MARGIN * self.size)))
        person = cv2.dilate((labels != LABEL_BG).astype(np.uint8),
                            cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1)))
        self.frames.append(frame)
        self.masks.append(person == 0)

    def build(self) -> tuple[np.ndarray, float]:
        """(uint8 [S,S,3] background, fraction of it inpainted)."""
        import cv2

        frames = np.stack(self.frames)  # [K,S,S,3]
        masks = np.stack(self.masks)  # [K,S,S]
        seen = masks.any(0)
        out = np.zeros(frames.shape[1:], np.uint8)
        for y0 in range(0, self.size, 64):  # row blocks keep the float copy small
            f = frames[:, y0:y0 + 64].astype(np.float32)
            f[~masks[:, y0:y0 + 64]] = np.nan
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN pixels: inpainted below
                med = np.nanmedian(f, axis=0)
            out[y0:y0 + 64] = np.nan_to_num(med).round().clip(0, 255).astype(np.uint8)
        holes = (~seen).astype(np.uint8)
        if holes.any():
            radius = max(3, self.size // 64)
            out = cv2.inpaint(out, holes, radius, cv2.INPAINT_TELEA)
        return out, float(holes.mean())
