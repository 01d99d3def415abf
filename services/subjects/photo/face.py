"""The photo's one face: reading the picture, the bad-input checks, FaceMesh, the crop.

Refused, each with one line: a file that is no picture, no face, two or more faces, a
face under MIN_FACE_PX tall, a face turned further than MAX_YAW_DEG from the camera
(a profile view shows one side only: the other cannot be made up).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.spatial.transform import Rotation

from services.common.errors import InvalidInput
from services.subjects.prepare.crop import Crop, choose_crop
from services.subjects.prepare.landmarks import MIN_FACE_PX, FaceTracker
from services.subjects.prepare.pose import photo_pose

#: Largest head turn (yaw, degrees) a photo may show.
MAX_YAW_DEG = 30.0
#: Rendering camera: focal length in frame sizes (a portrait lens, ~16° field of view).
FOCAL_SIZES = 3.5


@dataclass(frozen=True)
class PhotoFace:
    """The face found in a photo, on its square crop."""

    image: np.ndarray  #: uint8 [S,S,3] the crop
    mesh: np.ndarray  #: float64 [478,3] FaceMesh points in crop pixels (continuous coordinates, z like x)
    crop: Crop
    name: str  #: the file's name
    face_px: float  #: face height in the source (forehead to chin)
    yaw_deg: float
    pitch_deg: float

    @property
    def size(self) -> int:
        return self.image.shape[0]

    @property
    def focal(self) -> float:
        return FOCAL_SIZES * self.size


def read_photo(path: str | Path) -> np.ndarray:
    """uint8 RGB [H,W,3] of a picture file, turned upright by its EXIF orientation."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    path = Path(path)
    if not path.is_file():
        raise InvalidInput(f"photo not found: {path}")
    try:
        with Image.open(path) as im:
            im = ImageOps.exif_transpose(im)
            return np.asarray(im.convert("RGB"))
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise InvalidInput(f"{path.name} is not a picture file PIL can read (jpg, png, webp…): {exc}") from None


def head_angles(mesh_px: np.ndarray, focal: float, cx: float, cy: float) -> tuple[float, float]:
    """(yaw, pitch) in degrees of the head in a picture: 0 facing the camera."""
    rvec, _, _ = photo_pose(mesh_px, focal, cx, cy)
    return rotation_angles(Rotation.from_rotvec(rvec).as_matrix())


def rotation_angles(head_to_camera: np.ndarray) -> tuple[float, float]:
    """(yaw, pitch) in degrees of a head → OpenCV camera rotation [3,3]."""
    # head frame (x right, y up, z toward the camera) → OpenCV camera: a frontal head is a half
    # turn about x; what is left over is the head's own turn
    rel = Rotation.from_rotvec([np.pi, 0.0, 0.0]).inv() * Rotation.from_matrix(head_to_camera)
    pitch, yaw, _ = rel.as_euler("xyz", degrees=True)
    return float(yaw), float(pitch)


def find_face(rgb: np.ndarray, name: str, size: int = 256) -> PhotoFace:
    """The one face of a photo on a `size`² crop of head, neck and shoulders, or InvalidInput."""
    tracker = FaceTracker(static=True)
    try:
        faces = tracker.count_faces(rgb)
        mesh = tracker.landmarks(rgb)
    finally:
        tracker.close()
    if faces >= 2:
        raise InvalidInput(f"{faces} faces in {name}: from-photo needs a photo of one person; crop the others out")
    if mesh is None:
        raise InvalidInput(f"no face found in {name}: from-photo needs one person facing the camera, the face "
                           f"at least {MIN_FACE_PX:.0f} px tall")
    height = float(mesh[:, 1].max() - mesh[:, 1].min())
    if height < MIN_FACE_PX:
        raise InvalidInput(f"the face in {name} is only about {height:.0f} px tall; from-photo needs at least "
                           f"{MIN_FACE_PX:.0f} px (a larger or closer photo)")
    h, w = rgb.shape[:2]
    crop = choose_crop(mesh[None].astype(np.float64), w, h, size)
    points = crop.points(mesh)
    yaw, pitch = head_angles(points, FOCAL_SIZES * size, size / 2, size / 2)
    if abs(yaw) > MAX_YAW_DEG:
        raise InvalidInput(f"the face in {name} is turned {abs(yaw):.0f}° to the side (a profile view); "
                           f"from-photo needs a face turned at most {MAX_YAW_DEG:.0f}° from the camera")
    return PhotoFace(crop.apply(rgb), points, crop, name, height, yaw, pitch)
