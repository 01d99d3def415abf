"""`subject prepare`'s one fixed crop: head, neck and shoulders for square, portrait,
landscape and tight framings, padding only when the picture is too small."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("cv2", reason="needs the preprocess extra (opencv-python-headless)")

from services.subjects.prepare.crop import FOREHEAD_AT, MIN_FACES, TARGET_FACES, choose_crop  # noqa: E402


def _faces(cx: float, top: float, height: float, n: int = 50, sway: float = 0.0) -> np.ndarray:
    """FaceMesh-like points [n,478,3]: a face box `height` tall (width 0.8·height), swaying sideways."""
    rng = np.random.default_rng(0)
    u = rng.uniform(-0.4, 0.4, 478) * height
    v = rng.uniform(0, 1, 478) * height
    u[:2], v[:2] = (-0.4 * height, 0.4 * height), (0, height)  # the box's extremes
    shift = sway * height * np.sin(np.linspace(0, 6, n))
    pts = np.zeros((n, 478, 3))
    pts[:, :, 0] = cx + u[None] + shift[:, None]
    pts[:, :, 1] = top + v[None]
    return pts


def _inside(crop, pts) -> bool:
    q = crop.points(pts)
    return bool(np.all((q[..., :2] >= 0) & (q[..., :2] <= crop.size)))


def test_roomy_frame_gets_the_target_framing() -> None:
    pts = _faces(960, 300, 300)  # 1920×1080 landscape, a 300 px face
    crop = choose_crop(pts, 1920, 1080, 512)
    assert crop.side == round(TARGET_FACES * 300) and not crop.padded
    assert crop.y0 == round(300 - FOREHEAD_AT * crop.side)
    assert abs(crop.x0 + crop.side / 2 - 960) <= 1 and _inside(crop, pts)


def test_tight_frame_uses_all_of_it_without_padding() -> None:
    pts = _faces(128, 40, 168)  # the 256² clip: the face is two thirds of the frame
    crop = choose_crop(pts, 256, 256, 256)
    assert (crop.x0, crop.y0, crop.side) == (0, 0, 256) and not crop.padded and _inside(crop, pts)


def test_portrait_frame_is_cropped_square_inside_it() -> None:
    pts = _faces(540, 700, 450, sway=0.1)  # 1080×1920 phone video
    crop = choose_crop(pts, 1080, 1920, 256)
    assert crop.side <= 1080 and not crop.padded and _inside(crop, pts)
    assert crop.side >= MIN_FACES * 450


def test_too_small_a_frame_is_padded_around_the_face() -> None:
    pts = _faces(127, 60, 237)  # a 254×570 portrait strip: narrower than 1.5 face heights
    crop = choose_crop(pts, 254, 570, 256)
    assert crop.padded and crop.side == round(MIN_FACES * 237) and _inside(crop, pts)
    img = np.zeros((570, 254, 3), np.uint8)
    img[:, :, 1] = np.arange(254)[None]  # green = x
    out = crop.apply(img)
    assert out.shape == (256, 256, 3)
    # padding repeats the edge columns; inside, the picture maps where `points` says
    x_left = crop.points(np.array([[0.5, 300.0]]))[0, 0]
    assert out[128, : int(x_left) - 1, 1].max() == 0 and out[128, -2, 1] == 253


def test_face_near_an_edge_stays_in_the_crop() -> None:
    pts = _faces(160, 200, 250)  # near the left edge of a 1280×720 frame
    crop = choose_crop(pts, 1280, 720, 512)
    assert crop.x0 == 0 and not crop.padded and _inside(crop, pts)


def test_principal_point_is_the_source_centre_in_crop_pixels() -> None:
    pts = _faces(960, 300, 300)
    crop = choose_crop(pts, 1920, 1080, 512)
    cx, cy = crop.principal_point()
    assert cx == pytest.approx((960 - crop.x0) * crop.scale) and cy == pytest.approx((540 - crop.y0) * crop.scale)
