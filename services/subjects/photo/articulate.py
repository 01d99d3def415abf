"""Mouth and eyelids of the photo head: closed-form moves of points in the face's own plane.

Points are given in the face's axes of the photo (u along the line through the eye
corners, v down the face, pixels). The rest is the photo's own mouth: its lip gap, width
and corners, and every move is a change from it. The jaw drops the lower lip and chin
(lens-shaped at the lips, the whole chin below, fading into the neck and cheeks) and the
upper lip lifts a little; closing below the photo's gap narrows the photo's own opening
along the lips, so a photo that smiles with parted lips closes fully for /m/. Rounding
narrows and pushes the lips forward while spreading widens them; the upper lid slides
down to the lower one, the eyeball strip between them shrinking under it.
"""

from __future__ import annotations

import numpy as np

from services.subjects.prepare.parsing import face_axes

#: FaceMesh inner-lip contours, corner to corner (78 … 308).
INNER_UPPER = np.array([78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308])
INNER_LOWER = np.array([78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308])
#: Outer-lip contours, corner to corner (61 … 291).
OUTER_UPPER = np.array([61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291])
OUTER_LOWER = np.array([61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291])
#: Eyelid contours (upper, lower), corner to corner: the subject's right eye, then the left.
EYES = (
    (np.array([33, 246, 161, 160, 159, 158, 157, 173, 133]), np.array([33, 7, 163, 144, 145, 153, 154, 155, 133])),
    (np.array([263, 466, 388, 387, 386, 385, 384, 398, 362]), np.array([263, 249, 390, 373, 374, 380, 381, 382, 362])),
)
_CHIN = 152
#: Widest jaw opening (viseme open = 1): inner-lip gap in face heights.
JAW_GAP = 0.13
#: Share of a change of the lip gap that the upper lip makes (the jaw makes the rest).
UPPER_LIP_SHARE = 0.1
#: Rounding of the photo's own lips (the scale of rounding / spreading is relative to it).
PHOTO_ROUND = 0.3
#: Width change per unit of rounding, and lip protrusion per unit (metres).
ROUND_NARROW, ROUND_PROTRUDE_M = 0.3, 0.012
#: How far the upper lid closes at a full blink (share of the eye's opening).
LID_TRAVEL = 0.92


def _curve(u_pts: np.ndarray, v_pts: np.ndarray):
    order = np.argsort(u_pts)
    us, vs = u_pts[order], v_pts[order]
    return lambda u: np.interp(u, us, vs)


def _smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3 - 2 * x)


class FaceRig:
    """The articulation of one photo's face, from its FaceMesh points [478,≥2] (grid
    coordinates: pixel centres at integers)."""

    def __init__(self, mesh: np.ndarray) -> None:
        p = np.asarray(mesh, np.float64)[:, :2]
        _, self.right, self.down, self.face_h, _ = face_axes(p)
        self.origin = (p[13] + p[14]) / 2  #: the mouth centre
        u, v = self.local(p)
        self.half_width = float(abs(u[291] - u[61]) / 2)  #: outer lips
        self.inner_half = float(abs(u[308] - u[78]) / 2)
        self.chin_v = float(v[_CHIN])
        self._upper = _curve(u[INNER_UPPER], v[INNER_UPPER])
        self._lower = _curve(u[INNER_LOWER], v[INNER_LOWER])
        self._mid_u = float((u[78] + u[308]) / 2)
        self.gap0 = float(max(v[14] - v[13], 0.0))  #: the photo's own opening at the centre (px)
        #: the photo's opening as a viseme opening: the rest
        self.rest_open = self.gap0 / self.gap(1.0)
        #: per eye: (u from, u to, upper lid v(u), lower lid v(u), eye width)
        self._eyes = [(float(min(u[up].min(), u[lo].min())), float(max(u[up].max(), u[lo].max())),
                       _curve(u[up], v[up]), _curve(u[lo], v[lo]), float(np.ptp(u[up]))) for up, lo in EYES]

    # -- coordinates -------------------------------------------------------------------------
    def local(self, xy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        d = np.asarray(xy, np.float64) - self.origin
        return d @ self.right, d @ self.down

    def image(self, u: np.ndarray, v: np.ndarray) -> np.ndarray:
        return self.origin + u[..., None] * self.right + v[..., None] * self.down

    def seam(self, u: np.ndarray) -> np.ndarray:
        return (self._upper(u) + self._lower(u)) / 2

    def lower_side(self, xy: np.ndarray) -> np.ndarray:
        """bool: points below the line where the lips meet (carried on straight past the corners)."""
        u, v = self.local(xy)
        return v > self.seam(u)

    def in_photo_mouth(self, xy: np.ndarray, margin: float = 0.5) -> np.ndarray:
        """bool: points strictly between the photo's inner lips (teeth the photo shows)."""
        u, v = self.local(xy)
        inside = np.abs(u - self._mid_u) < self.inner_half
        return inside & (v > self._upper(u) + margin) & (v < self._lower(u) - margin)

    def near_seam(self, xy: np.ndarray, reach: float = 1.5) -> np.ndarray:
        """bool: points within `reach` px of the lips' meeting line, between the corners."""
        u, v = self.local(xy)
        return (np.abs(u - self._mid_u) < self.inner_half) & (np.abs(v - self.seam(u)) < reach)

    # -- moves -------------------------------------------------------------------------------
    def photo_gap(self, u: np.ndarray) -> np.ndarray:
        """The photo's inner-lip gap (px) at `u`: 0 at and beyond the corners."""
        return np.maximum(self._lower(u) - self._upper(u), 0.0)

    def gap(self, mouth_open: float) -> float:
        """Inner-lip gap at the centre (px) for a viseme opening."""
        return float(mouth_open) * JAW_GAP * self.face_h

    def move(self, xy: np.ndarray, mouth_open: float, mouth_round: float, blink: float,
             lower: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(moved points [N,2] in grid px, forward push [N] in metres toward the camera).
        `lower` marks points of the lower lip / jaw (default: below the lips' line)."""
        u, v = self.local(xy)
        if lower is None:
            lower = v > self.seam(u)
        uc = u - self._mid_u
        a, ai, fh = self.half_width, max(self.inner_half, 1e-3), self.face_h
        d = self.gap(mouth_open) - self.gap0  # the change of the gap at the centre
        # along the lips: opening wider than the photo is lens-shaped; closing narrows the
        # photo's own opening, so that its whole length closes at once
        if d < 0 and self.gap0 > 0.5:
            lens = np.clip(self.photo_gap(u) / self.gap0, 0, 1.5)
        else:
            lens = np.sqrt(np.clip(1 - (uc / ai) ** 2, 0, 1))
        # jaw: the lower lip (and what lies between the photo's lips below their meeting line)
        # as the lips, the chin as a whole lower down, fading into the neck
        wide = np.exp(-(uc / (1.3 * a)) ** 2)
        below = np.maximum(v - self._lower(u), 0)
        beta = _smoothstep(below / (0.12 * fh))
        fade = np.exp(-(np.maximum(v - self.chin_v, 0) / (0.12 * fh)) ** 2)
        jaw = fade * ((1 - beta) * lens + beta * wide)
        dv = np.where(lower, (1 - UPPER_LIP_SHARE) * d * jaw, 0.0)
        # the upper lip makes the rest of the change, fading upwards
        above = np.maximum(self._upper(u) - v, 0)
        dv -= np.where(lower, 0.0, UPPER_LIP_SHARE * d * lens * np.exp(-(above / (0.06 * fh)) ** 2))
        # rounding narrows and protrudes, spreading widens
        dr = float(mouth_round) - PHOTO_ROUND
        lips = (np.exp(-(np.maximum(np.abs(uc) - 0.5 * a, 0) / (0.6 * a)) ** 2)
                * np.exp(-((v - self.seam(u)) / (0.7 * a)) ** 2))
        du = -ROUND_NARROW * dr * uc * lips
        push = ROUND_PROTRUDE_M * dr * lips
        v2 = v + dv
        # eyelids
        if blink > 0:
            for lo_u, hi_u, upper, lower_lid, width in self._eyes:
                inside = (u > lo_u) & (u < hi_u)
                if not inside.any():
                    continue
                vu, vl = upper(u), lower_lid(u)
                reach = 0.5 * width
                vu2 = vu + float(blink) * LID_TRAVEL * (vl - vu)
                lid = inside & (v >= vu - reach) & (v <= vu)
                ball = inside & (v > vu) & (v <= vl)
                t = (v - (vu - reach)) / reach
                v2 = np.where(lid, v2 + (vu2 - vu) * t, v2)
                span = np.maximum(vl - vu, 1e-6)
                v2 = np.where(ball, vu2 + (v - vu) * (vl - vu2) / span, v2)
        return self.image(u + du, v2), push
