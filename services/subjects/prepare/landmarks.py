"""Face landmarks per frame with MediaPipe FaceMesh (478 points with iris), the face count,
short detection gaps filled, and the mapping to the 68 iBUG points of `.lms` files.

FaceMesh returns x, y normalised to the picture and z (depth, camera-forward) on the
scale of x; `track` turns them into source pixels (x·W, y·H, z·W), where pixel centres
sit at i + 0.5. MediaPipe 0.10.14's legacy solutions carry their models inside the
wheel, so nothing is downloaded.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Iterable, Iterator
from types import ModuleType

import numpy as np
from tqdm import tqdm

from services.common.errors import InvalidInput, Unavailable
from services.common.extras import optional_import

N_MESH = 478
#: The release installed: 0.10.14–0.10.21 carry the legacy solutions' models inside the wheel
#: (later releases download them at run time).
MEDIAPIPE_VERSION = "0.10.14"
#: FaceMesh indices of the 68 iBUG points (dlib / ER-NeRF `.lms` order), chosen as the mesh
#: vertices on the same anatomical contours:
#:   0–16 jaw, from the subject's right ear (image left) over the chin (8 = 152) to the left ear;
#:   17–21 / 22–26 brows, outer→inner on the right, inner→outer on the left (upper brow edge);
#:   27–30 nose bridge from between the eyes to the tip (4); 31–35 nostrils, image left→right;
#:   36–41 right eye, 42–47 left eye (outer/inner corners 33, 133 / 362, 263, lids between);
#:   48–59 outer lips from the right corner (61) over the upper lip and back along the lower;
#:   60–67 inner lips from the right inner corner (78); 62 = 13 and 66 = 14 are the inner-lip
#:   centres whose gap is the mouth opening.
IBUG68 = np.array([
    127, 234, 93, 132, 58, 136, 150, 176, 152, 400, 379, 365, 288, 361, 323, 454, 356,  # jaw
    70, 63, 105, 66, 107,  # right brow
    336, 296, 334, 293, 300,  # left brow
    168, 197, 5, 4,  # nose bridge
    75, 97, 2, 326, 305,  # nostrils
    33, 160, 158, 133, 153, 144,  # right eye
    362, 385, 387, 263, 373, 380,  # left eye
    61, 39, 37, 0, 267, 269, 291, 405, 314, 17, 84, 181,  # outer lips
    78, 82, 13, 312, 308, 317, 14, 87,  # inner lips
], np.int64)
#: The face outline (FaceMesh's FACE_OVAL contour, clockwise from the forehead centre).
FACE_OVAL = np.array([10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400,
                      377, 152, 148, 176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67,
                      109], np.int64)
#: Longest stretch without a detected face that is bridged by interpolation (seconds).
MAX_GAP_SECONDS = 0.4
#: Smallest face (forehead-to-chin height in source pixels) that makes a usable subject.
MIN_FACE_PX = 100.0


def to_ibug68(mesh: np.ndarray) -> np.ndarray:
    """[..., 478, ≥2] FaceMesh points → [..., 68, 2] iBUG points."""
    return np.asarray(mesh)[..., IBUG68, :2]


@contextlib.contextmanager
def quiet_stderr() -> Iterator[None]:
    """MediaPipe's C++ side logs set-up chatter straight to fd 2; hide it while graphs start."""
    try:
        fd = os.dup(2)
    except OSError:
        yield
        return
    with open(os.devnull, "w") as null:
        os.dup2(null.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(fd, 2)
            os.close(fd)


def mediapipe() -> ModuleType:
    """The mediapipe module (the `preprocess` extra), its protobuf deprecation chatter muted."""
    # mediapipe 0.10.14 calls a protobuf API that warns on every result conversion
    warnings.filterwarnings("ignore", message="SymbolDatabase.GetPrototype", category=UserWarning)
    optional_import("cv2", "preprocess")
    try:
        return optional_import("mediapipe", "preprocess")
    except Unavailable as exc:  # its wheel goes in without its declared dependencies (pyproject)
        raise Unavailable("mediapipe is not installed: pip install 'talking-head[preprocess]' && "
                          f"pip install --no-deps mediapipe=={MEDIAPIPE_VERSION} (make setup does both)") from exc


class FaceTracker:
    """FaceMesh in video mode (detect once, then track) plus a face detector for counting.
    `static=True` detects afresh on every picture: each is measured on its own, as an
    evaluation that compares two sequences frame by frame needs."""

    def __init__(self, static: bool = False) -> None:
        mp = mediapipe()
        with quiet_stderr():
            self.mesh = mp.solutions.face_mesh.FaceMesh(
                static_image_mode=static, max_num_faces=1, refine_landmarks=True,
                min_detection_confidence=0.5, min_tracking_confidence=0.5)
            # full-range model: faces anywhere in the picture, not only close-ups
            self.detector = mp.solutions.face_detection.FaceDetection(model_selection=1,
                                                                       min_detection_confidence=0.6)
            blank = np.zeros((64, 64, 3), np.uint8)
            self.mesh.process(blank)
            self.detector.process(blank)

    def landmarks(self, rgb: np.ndarray) -> np.ndarray | None:
        """[478, 3] source pixels for the tracked face, or None."""
        result = self.mesh.process(rgb)
        if not result.multi_face_landmarks:
            return None
        h, w = rgb.shape[:2]
        pts = np.array([(p.x, p.y, p.z) for p in result.multi_face_landmarks[0].landmark], np.float32)
        return pts * np.array([w, h, w], np.float32)

    def count_faces(self, rgb: np.ndarray) -> int:
        """Faces at least a third the size of the largest one (small posters and crowds aside)."""
        result = self.detector.process(rgb)
        boxes = [d.location_data.relative_bounding_box for d in (result.detections or [])]
        sizes = [b.width * b.height for b in boxes]
        return sum(s >= max(sizes) / 3 for s in sizes) if sizes else 0

    def close(self) -> None:
        self.mesh.close()
        self.detector.close()


def track(pictures: Iterable[np.ndarray], n_frames: int, fps: float, scale: float = 1.0,
          progress: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """FaceMesh over every frame: ([N,478,3] points in source pixels with NaN where no face
    was found, [N] faces counted on frames sampled once a second, −1 elsewhere).
    `scale` maps picture pixels back to source pixels (pictures may be decoded smaller)."""
    tracker = FaceTracker()
    points = np.full((n_frames, N_MESH, 3), np.nan, np.float32)
    counts = np.full(n_frames, -1, np.int16)
    step = max(1, int(round(fps)))
    seen = 0
    try:
        for i, rgb in enumerate(tqdm(pictures, total=n_frames, desc="landmarks", unit="frame",
                                     disable=not progress)):
            if i >= n_frames:
                break
            lm = tracker.landmarks(rgb)
            if lm is not None:
                points[i] = lm * scale
            if i % step == 0:
                counts[i] = tracker.count_faces(rgb)
            seen = i + 1
    finally:
        tracker.close()
    return points[:seen], counts[:seen]  # a stream may hold fewer frames than its header says


def _spans(mask: np.ndarray) -> list[tuple[int, int]]:
    """[(first, last)] of each run of True."""
    m = np.concatenate([[False], mask, [False]]).astype(np.int8)
    starts = np.flatnonzero(np.diff(m) == 1)
    ends = np.flatnonzero(np.diff(m) == -1) - 1
    return list(zip(starts.tolist(), ends.tolist()))


def _where(spans: list[tuple[int, int]], fps: float, limit: int = 4) -> str:
    text = ", ".join(f"frames {a}–{b} ({a / fps:.1f}–{(b + 1) / fps:.1f} s)" for a, b in spans[:limit])
    return text + (f" and {len(spans) - limit} more" if len(spans) > limit else "")


def check_faces(points: np.ndarray, counts: np.ndarray, fps: float, name: str) -> None:
    """One InvalidInput for a video without a face, with two or more faces, with the face
    lost for long stretches or too small; else nothing."""
    found = np.isfinite(points[:, 0, 0])
    sampled = counts >= 0
    if not found.any():
        raise InvalidInput(f"no face found in {name} ({len(points)} frames): prepare needs one person "
                           f"facing the camera, the face at least {MIN_FACE_PX:.0f} px tall")
    many = np.flatnonzero(sampled & (counts >= 2))
    if len(many) >= max(1, 0.25 * sampled.sum()):
        times = ", ".join(f"{i / fps:.0f} s" for i in many[:5])
        raise InvalidInput(f"two or more faces in {name} ({len(many)} of {sampled.sum()} frames checked, e.g. "
                           f"at {times}): prepare needs a video of one person; crop the others out")
    long = [(a, b) for a, b in _spans(~found) if b - a + 1 > MAX_GAP_SECONDS * fps]
    if long:
        raise InvalidInput(f"the face is lost in {name} for {_where(long, fps)}: cut those parts out "
                           f"(gaps up to {MAX_GAP_SECONDS:g} s are bridged)")
    pts = points[found]
    height = np.median(pts[:, :, 1].max(1) - pts[:, :, 1].min(1))
    if height < MIN_FACE_PX:
        raise InvalidInput(f"the face in {name} is only about {height:.0f} px tall; prepare needs at least "
                           f"{MIN_FACE_PX:.0f} px (a closer shot or a higher-resolution video)")


def fill_gaps(points: np.ndarray) -> np.ndarray:
    """Linear interpolation over frames without a face (ends hold the nearest detection)."""
    found = np.isfinite(points[:, 0, 0])
    if found.all():
        return points
    t = np.arange(len(points))
    flat = points.reshape(len(points), -1)
    out = np.empty_like(flat)
    for j in range(flat.shape[1]):
        out[:, j] = np.interp(t, t[found], flat[found, j])
    return out.reshape(points.shape)
