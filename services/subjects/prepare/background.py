"""The clean background (bc.jpg): each pixel's median over sampled frames where it shows
background, the person's outline widened by a margin first; pixels the person never
uncovers are inpainted (cv2.inpaint, Telea)."""

from __future__ import annotations

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

    def build(self) -> tuple[np.ndarray, np.ndarray]:
        """(uint8 [S,S,3] background, bool [S,S] pixels seen rather than inpainted)."""
        import cv2

        masks = np.stack(self.masks)  # [K,S,S]: True where a frame shows background
        seen = masks.any(0)
        # median over the frames that show each pixel: the others sort last (256), and the
        # median is taken at half of each pixel's own count
        stack = np.stack(self.frames).astype(np.uint16)  # [K,S,S,3]
        stack[~masks] = 256
        stack.sort(axis=0)
        middle = np.maximum((masks.sum(0) - 1) // 2, 0)
        out = np.take_along_axis(stack, np.repeat(middle[None, ..., None], 3, -1), axis=0)[0]
        out = np.minimum(out, 255).astype(np.uint8)
        holes = (~seen).astype(np.uint8)
        if holes.any():
            radius = max(3, self.size // 64)
            out = cv2.inpaint(out, holes, radius, cv2.INPAINT_TELEA)
        return out, seen
