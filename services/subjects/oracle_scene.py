"""The oracle subject's geometry and materials: a procedural head, neck and shoulders.

Pure numpy, no I/O. Units are the renderer's scene units (head inside the ER-NeRF AABB
[−1,−0.5,−1, 1,0.5,1]); the head frame has y up and the face looking down +z. The
head is a union of quadrics ray-cast exactly; eyes, mouth and hairline are carved
regions on those surfaces, decided per ray where it crosses the face plane, so the
mouth hole and eye openings are watertight from every viewpoint the subject uses.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


# ---- part ids (index into PART_NAMES); region labels for the parsing masks ----------
PART_NAMES = (
    "skull", "jaw", "chin", "cheek_r", "cheek_l", "muzzle_up", "muzzle_lo", "nose_ridge",
    "nose_tip", "ala_r", "ala_l", "ear_r", "ear_l", "lid_r", "lid_l", "hair", "brow_r",
    "brow_l", "eye_r", "eye_l", "teeth_up", "teeth_lo", "tongue", "cavity", "neck", "torso",
)
PART = {n: i for i, n in enumerate(PART_NAMES)}
SKIN_PARTS = tuple(PART[n] for n in PART_NAMES[:15])
#: Parts carved by the mouth hole / eye openings (the face skin, not the nose).
FACE_SKIN = tuple(PART[n] for n in ("skull", "jaw", "chin", "cheek_r", "cheek_l", "muzzle_up", "muzzle_lo"))
MOUTH_INTERIOR = (PART["teeth_up"], PART["teeth_lo"], PART["tongue"], PART["cavity"])
HEAD_PARTS = tuple(range(PART["neck"]))

LABEL_BG, LABEL_HEAD, LABEL_NECK, LABEL_TORSO = 0, 1, 2, 3
PART_LABEL = np.array([LABEL_HEAD] * len(HEAD_PARTS) + [LABEL_NECK, LABEL_TORSO], np.uint8)

# ---- fixed geometry (head frame) ------------------------------------------------------
SKULL = ((0.0, 0.07, -0.03), (0.29, 0.355, 0.33))
HAIR = ((0.0, 0.095, -0.045), (0.312, 0.367, 0.357))
CHEEK = ((0.11, -0.07, 0.085), (0.1, 0.085, 0.14))
MUZZLE_UP = ((0.0, -0.165, 0.045), (0.12, 0.075, 0.24))
# parts that move with the jaw (their rest position; the jaw offset is added per frame)
JAW = ((0.0, -0.15, -0.01), (0.205, 0.208, 0.28))
CHIN = ((0.0, -0.3, 0.06), (0.09, 0.06, 0.17))
MUZZLE_LO = ((0.0, -0.218, 0.04), (0.11, 0.058, 0.235))
NOSE_RIDGE = ((0.0, -0.005, 0.272), (0.028, 0.085, 0.05))
NOSE_TIP = ((0.0, -0.072, 0.322), (0.036, 0.032, 0.036))
ALA = ((0.034, -0.083, 0.296), (0.025, 0.021, 0.026))
EAR = ((0.283, 0.0, -0.02), (0.03, 0.07, 0.046))
EYE_C = np.array([0.097, 0.035, 0.224], np.float32)
EYE_R, LID_R = 0.05, 0.0555
EYE_HALF_W, EYE_UP, EYE_LO = 0.037, 0.021, 0.012
BROW = ((0.1, 0.108, 0.27), (0.052, 0.011, 0.028))
MOUTH_Y = -0.192  # mouth line with lips closed
FACE_PLANE_Z = 0.27  # where rays are tested against the eye/mouth openings
NECK = ((0.0, -0.07), (0.125, 0.11), (-1.0, -0.17))  # body frame: centre xz, radii xz, y range
TORSO = ((0.0, -0.88, -0.1), (0.62, 0.4, 0.28))
NECKLINE_Y = -0.5
#: Rotation pivot for head motion (top of the neck), head frame.
PIVOT = np.array([0.0, -0.33, -0.05], np.float32)
HEAD_BOUND = ((0.0, 0.02, 0.0), 0.62)


# ---- colours (sRGB in [0, 1]) ----------------------------------------------------------
SKIN = (0.89, 0.69, 0.57)
NECK_RGB = (0.85, 0.65, 0.54)
LIP_RGB = (0.78, 0.42, 0.43)
HAIR_RGB = (0.25, 0.15, 0.09)
BROW_RGB = (0.2, 0.12, 0.075)
IRIS_BROWN = (0.42, 0.26, 0.13)
IRIS_BLUE = (0.32, 0.45, 0.58)
SHIRT_RGB = (0.2, 0.35, 0.47)


@dataclass(frozen=True)
class FaceState:
    """Everything that changes a frame: mouth (visemes), eyes, head pose."""

    open: float = 0.0  #: mouth opening 0…1
    round: float = 0.1  #: lip rounding 0…1
    blink: float = 0.0  #: 0 open … 1 closed
    #: head → body rigid transform (4×4, scene units)
    head_to_body: np.ndarray | None = None


@dataclass(frozen=True)
class MouthShape:
    """Mouth geometry derived from (open, round), head frame, lips measured on the face plane."""

    gap: float  #: total lip separation at the centre
    drop: float  #: how far the jaw (and lower lip) moves down
    up: float  #: how far the upper inner lip edge rises
    half_w: float  #: outer half width (corner to centre)
    inner_w: float  #: inner half width of the opening
    lip_up: float  #: upper lip thickness at the centre
    lip_lo: float  #: lower lip thickness at the centre
    protrude: float  #: forward push of the lips with rounding

    @staticmethod
    def of(open_: float, round_: float) -> MouthShape:
        o = float(np.clip(open_, 0, 1))
        r = float(np.clip(round_, 0, 1))
        gap = 0.075 * o
        half_w = 0.067 * (1.0 - 0.3 * r) + 0.004 * o
        return MouthShape(gap=gap, drop=0.7 * gap + 0.01 * o, up=0.3 * gap, half_w=half_w,
                          inner_w=half_w * (0.86 - 0.1 * r), lip_up=0.017 + 0.004 * r,
                          lip_lo=0.021 + 0.004 * r, protrude=0.016 * r)

    def inner_upper(self, x: np.ndarray) -> np.ndarray:
        c = np.sqrt(np.clip(1 - (x / self.inner_w) ** 2, 0, 1))
        return MOUTH_Y + self.up * c

    def inner_lower(self, x: np.ndarray) -> np.ndarray:
        c = np.sqrt(np.clip(1 - (x / self.inner_w) ** 2, 0, 1))
        return MOUTH_Y - (self.gap - self.up) * c

    def outer_upper(self, x: np.ndarray) -> np.ndarray:
        e = np.clip(1 - (x / self.half_w) ** 2, 0, 1) ** 0.6
        bow = 1.0 - 0.22 * np.exp(-(x / 0.009) ** 2) + 0.1 * np.exp(-((np.abs(x) - 0.017) / 0.01) ** 2)
        return self.inner_upper(x) + self.lip_up * e * bow

    def outer_lower(self, x: np.ndarray) -> np.ndarray:
        e = np.clip(1 - (x / (self.half_w * 0.96)) ** 2, 0, 1) ** 0.7
        return self.inner_lower(x) - self.lip_lo * e


def eye_lids(x: np.ndarray, blink: float) -> tuple[np.ndarray, np.ndarray]:
    """(upper, lower) lid heights relative to the eye centre at eye-local x (>0 = outward)."""
    s = np.sqrt(np.clip(1 - (x / EYE_HALF_W) ** 2, 0, 1))
    skew = 1.0 + 0.18 * (x / EYE_HALF_W)  # almond: the upper lid peaks toward the inner corner
    lower = -EYE_LO * s * (1.0 - 0.1 * x / EYE_HALF_W) + 0.003 * (x / EYE_HALF_W)
    b = float(np.clip(blink, 0, 1))
    upper = (1 - b) * EYE_UP * s / skew + b * lower
    return upper, lower


def smoothstep(a: float, b: float, x: np.ndarray) -> np.ndarray:
    t = np.clip((x - a) / (b - a), 0, 1)
    return t * t * (3 - 2 * t)


class Texture:
    """Cheap deterministic 3D pattern: a sum of random plane waves (no I/O, seedable)."""

    def __init__(self, rng: np.random.Generator, n: int, freq: tuple[float, float]) -> None:
        dirs = rng.normal(size=(n, 3))
        dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
        self.k = (dirs * rng.uniform(*freq, size=(n, 1))).astype(np.float32)
        self.phase = rng.uniform(0, 2 * np.pi, size=(n, 1)).astype(np.float32)
        self.amp = np.float32(1.0 / np.sqrt(n))

    def __call__(self, p: np.ndarray) -> np.ndarray:
        """p [3,N] → pattern [N], roughly unit variance."""
        return np.sin(self.k @ p + self.phase).sum(0) * self.amp


# ---- lighting (fixed in the head frame for the head, body frame for the body) ---------
_KEY = np.array([-0.45, 0.55, 0.75], np.float32)
_KEY /= np.linalg.norm(_KEY)
_FILL = np.array([0.7, 0.05, 0.6], np.float32)
_FILL /= np.linalg.norm(_FILL)


def shade(base: np.ndarray, n: np.ndarray, view: np.ndarray, spec: float, shininess: float = 24.0,
          ambient: float = 0.38) -> np.ndarray:
    """Wrapped Lambert key + fill + ambient + Blinn-Phong highlight; base/n/view are [3,N]."""
    nk = _KEY[0] * n[0] + _KEY[1] * n[1] + _KEY[2] * n[2]
    nf = _FILL[0] * n[0] + _FILL[1] * n[1] + _FILL[2] * n[2]
    # wrap lighting keeps the terminator soft, as skin scatters light
    light = ambient + 0.45 * np.maximum((nk + 0.3) / 1.3, 0) + 0.2 * np.maximum(nk, 0) + 0.18 * np.maximum(nf, 0)
    h = _KEY[:, None] - view
    h /= np.maximum(np.sqrt((h * h).sum(0)), 1e-9)
    sp = spec * np.maximum((n * h).sum(0), 0) ** shininess
    return base * light + sp
