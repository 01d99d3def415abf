"""Parsing (head incl. hair / neck / torso / background) without a face-parsing network:
MediaPipe's person segmentation, split by the face mesh and the body's geometry.

- person: selfie segmentation (its general 256×256 model) above 0.5;
- head: the face outline, and every person pixel above the jaw line — the lower face
  outline, carried out sideways past the ears a little lower (ear lobes) — so hair and
  ears count as head, as in ER-NeRF's parsing;
- neck: skin-coloured person pixels below the jaw in a band as wide as the jaw, joined to
  the jaw (skin colour: the subject's own cheeks in this frame);
- torso: the rest of the person.
Coordinates follow the face: "down" is perpendicular to the line through the eye corners.
"""

from __future__ import annotations

import numpy as np

from services.subjects.layout import LABEL_BG, LABEL_HEAD, LABEL_NECK, LABEL_TORSO
from services.subjects.prepare.landmarks import FACE_OVAL, mediapipe, quiet_stderr

#: The lower face outline from the left ear (image right, 454) over the chin (152) to the right ear (234).
JAW = FACE_OVAL[8:29]
_EYE_CORNERS = (33, 263)
_MOUTH_CORNERS = (61, 291)
_JAW_CORNERS = (58, 288)
CHEEKS = (50, 280, 101, 330, 205, 425, 118, 347)
#: Ear lobes hang this far (face heights) below the jaw outline's ends.
EAR_DROP = 0.16
#: The neck band: how far below the chin it reaches and its widening, in face heights.
NECK_LENGTH, NECK_FLARE = 0.8, 0.25
#: Skin colour model: Mahalanobis radius and least spread in rg chromaticity; pixels darker
#: than DARKEST (R+G+B) have no reliable colour and are never skin.
SKIN_RADIUS, SKIN_FLOOR, DARKEST = 3.5, 0.01, 60.0


class Segmenter:
    """Person probability per pixel (MediaPipe selfie segmentation)."""

    def __init__(self) -> None:
        mp = mediapipe()
        with quiet_stderr():
            self.model = mp.solutions.selfie_segmentation.SelfieSegmentation(model_selection=0)
            self.model.process(np.zeros((64, 64, 3), np.uint8))

    def person(self, rgb: np.ndarray) -> np.ndarray:
        """float32 [H,W] in [0, 1]."""
        return self.model.process(rgb).segmentation_mask

    def close(self) -> None:
        self.model.close()


def face_axes(mesh: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, float, float]:
    """(eye centre, unit "right", unit "down", face height, face width) in image pixels."""
    p = mesh[:, :2]
    a, b = p[_EYE_CORNERS[0]], p[_EYE_CORNERS[1]]
    right = (b - a) / max(float(np.linalg.norm(b - a)), 1e-6)
    down = np.array([-right[1], right[0]])
    rel = p[:468] - (a + b) / 2
    u, v = rel @ right, rel @ down
    return (a + b) / 2, right, down, float(v.max() - v.min()), float(u.max() - u.min())


def polygon_mask(mask_shape: tuple[int, int], points: np.ndarray) -> np.ndarray:
    """bool mask of the polygon `points` [K,2] (pixel-centre coordinates, quarter-pixel precision)."""
    import cv2

    out = np.zeros(mask_shape, np.uint8)
    cv2.fillPoly(out, [np.round(points * 4).astype(np.int32)], 1, lineType=cv2.LINE_8, shift=2)
    return out.astype(bool)


def _outlines(mesh: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Polygons (pixel-centre coordinates) of the face outline, of everything above the jaw
    line, and of the neck band, from FaceMesh points [478,≥2] of a `size`-pixel image."""
    p = mesh[:, :2] - 0.5  # continuous coordinates → pixel-centre indices
    _, right, down, face_h, _ = face_axes(mesh)
    far = 4.0 * size
    jaw = p[JAW]
    left_end, right_end = jaw[-1], jaw[0]  # image left (234) and image right (454)
    drop = EAR_DROP * face_h * down
    # right ear → jaw → left ear, closed far above the head
    above = np.concatenate([
        [right_end + drop + far * (right - down), right_end + drop + far * right, right_end + drop],
        jaw,
        [left_end + drop, left_end + drop - far * right, left_end + drop - far * (right + down)],
    ])
    # the neck band: from below the ears, narrowing to the jaw corners' width, then flaring
    a, b = p[_JAW_CORNERS[0]], p[_JAW_CORNERS[1]]
    length, flare = NECK_LENGTH * face_h * down, NECK_FLARE * face_h * right
    band = np.array([left_end + drop, right_end + drop, b + length + flare, a + length - flare])
    return p[FACE_OVAL], above, band


def regions(mesh: np.ndarray, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(face outline, everything above the jaw line, the neck band) as bool masks, from
    FaceMesh points [478,≥2] in continuous pixel coordinates of an image of `shape`."""
    face, above, band = _outlines(mesh, max(shape))
    return polygon_mask(shape, face), polygon_mask(shape, above), polygon_mask(shape, band)


def _box(mask: np.ndarray) -> tuple[slice, slice] | None:
    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    if not len(rows):
        return None
    return slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1)


def _skin(rgb: np.ndarray, mesh: np.ndarray, box: tuple[slice, slice]) -> np.ndarray:
    """bool mask over `box`: pixels whose rg chromaticity (brightness-free, so a neck in the
    chin's shadow still counts) lies within SKIN_RADIUS of this face's cheeks."""
    h, w = rgb.shape[:2]
    samples = []
    for k in CHEEKS:
        x, y = np.clip(np.round(mesh[k, :2] - 0.5).astype(int), 0, [w - 1, h - 1])
        samples.append(rgb[max(y - 2, 0):y + 3, max(x - 2, 0):x + 3].reshape(-1, 3))
    cheeks = np.concatenate(samples).astype(np.float32)
    ref = cheeks[:, :2] / (cheeks.sum(-1, keepdims=True) + 1e-3)
    inv = np.linalg.inv(np.cov(ref.T) + np.eye(2) * SKIN_FLOOR ** 2)  # a floor: cheeks can be very uniform
    img = rgb[box].astype(np.float32)
    total = img.sum(-1) + 1e-3
    d0 = img[..., 0] / total - ref[:, 0].mean()
    d1 = img[..., 1] / total - ref[:, 1].mean()
    m2 = d0 * d0 * inv[0, 0] + 2 * d0 * d1 * inv[0, 1] + d1 * d1 * inv[1, 1]
    return (m2 < SKIN_RADIUS ** 2) & (total > DARKEST)


def parse(rgb: np.ndarray, mesh: np.ndarray, person: np.ndarray) -> np.ndarray:
    """uint8 labels [H,W] (0 bg, 1 head, 2 neck, 3 torso) for one crop-sized frame."""
    import cv2

    body = person > 0.5
    face, above, band = regions(mesh, body.shape)
    head = (body & above) | face
    rest = body & ~head
    neck = rest & band
    box = _box(neck)
    if box is not None:
        neck[box] &= _skin(rgb, mesh, box)
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (5, 5))
        neck = cv2.morphologyEx(neck.astype(np.uint8), cv2.MORPH_CLOSE, kernel).astype(bool) & rest & band
        # keep the parts joined to the head (a hand or a bare shoulder in the band is torso)
        _, comp = cv2.connectedComponents(neck.astype(np.uint8), connectivity=8)
        keep = np.zeros(int(comp.max()) + 1, bool)
        keep[comp[cv2.dilate(head.astype(np.uint8), kernel).astype(bool) & neck]] = True
        keep[0] = False
        neck = keep[comp]
    labels = np.full(body.shape, LABEL_BG, np.uint8)
    labels[rest] = LABEL_TORSO
    labels[neck] = LABEL_NECK
    labels[head] = LABEL_HEAD
    return labels


def torso_layer(rgb: np.ndarray, labels: np.ndarray, mesh: np.ndarray) -> np.ndarray:
    """uint8 RGBA [H,W,4]: neck and torso with the head taken out, the neck carried up under
    the chin (each column repeats its top neck pixel) so a head turning or nodding never
    uncovers a hole."""
    h, w = labels.shape
    alpha = (labels >= LABEL_NECK).astype(np.uint8) * 255
    rgba = np.zeros((h, w, 4), np.uint8)
    np.copyto(rgba[..., :3], rgb, where=alpha[..., None] > 0)
    neck = labels == LABEL_NECK
    has_neck = neck.any(0)
    if has_neck.any():
        top = neck.argmax(0)  # first neck row per column
        fill = polygon_mask((h, w), _outlines(mesh, max(h, w))[2]) & (labels == LABEL_HEAD)
        fill &= (np.arange(h)[:, None] < top) & has_neck
        np.copyto(rgba[..., :3], rgb[top, np.arange(w)][None], where=fill[..., None])
        alpha[fill] = 255
    rgba[..., 3] = alpha
    return rgba


def over_background(rgb: np.ndarray, labels: np.ndarray, background: np.ndarray, seen: np.ndarray) -> np.ndarray:
    """The frame with its background pixels replaced by the clean background (gt_imgs), where
    that background was seen; inpainted guesses never replace what the camera filmed."""
    return np.where(((labels == LABEL_BG) & seen)[..., None], background, rgb)
