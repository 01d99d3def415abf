"""`eval --photo` pieces: the mirrored and ±15° poses land where they should, identity is
scored over the face only."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture(scope="module")
def turned_head(preprocess_extra):
    """A head proxy made from a photo whose face is turned ~12° (the astronaut's proxy, turned)."""
    data = pytest.importorskip("skimage.data", reason="needs scikit-image (its astronaut photo)")
    from services.subjects.photo.dataset import photo_head
    from services.subjects.photo.face import find_face
    from services.subjects.photo.proxy import PhotoState

    turned = photo_head(find_face(data.astronaut(), "a.png", 512)).render(PhotoState(yaw=0.3))[0]
    return photo_head(find_face(turned, "turned.png", 128))


def test_mirrored_pose_mirrors_the_photo_yaw(turned_head) -> None:
    from services.subjects.photo.face import rotation_angles
    from services.subjects.photo.proxy import PhotoState
    from services.training.photo_eval import pose_turns

    head = turned_head
    assert abs(head.face.yaw_deg) > 6
    turns = pose_turns(head)
    yaw = {k: rotation_angles(head.head_to_camera(PhotoState(yaw=t)))[0] for k, t in turns.items()}
    assert yaw["photo"] == pytest.approx(head.face.yaw_deg, abs=0.01)
    assert yaw["mirrored"] == pytest.approx(-head.face.yaw_deg, abs=0.1)
    assert abs(yaw["yaw+15"] - yaw["yaw-15"]) == pytest.approx(30.0, abs=1.0)


def test_identity_is_scored_over_the_face_only() -> None:
    from services.training.photo_eval import identity_scores

    rng = np.random.default_rng(0)
    photo = rng.integers(0, 256, (32, 32, 3)).astype(np.uint8)
    mask = np.zeros((32, 32), bool)
    mask[8:24, 8:24] = True
    other = photo.copy()
    other[~mask] = 0  # everything but the face differs
    assert identity_scores(other, photo, mask)["psnr"] > 100
    worse = photo.copy()
    worse[mask] //= 2
    assert identity_scores(worse, photo, mask)["psnr"] < 15


def test_mouth_corr_follows_the_proxy_opening_and_reports_the_bare_visemes() -> None:
    """A photo that smiles with parted lips rests open: the gap that follows the proxy's
    opening (visemes, the photo's mouth in the silences) scores 1, against the bare visemes
    (closed in the silences) less; frames without a face are left out."""
    from services.training.photo_eval import _pose_scores

    t = np.linspace(0, 1, 60)
    bare = np.clip(np.sin(6 * np.pi * t), 0, None)
    rest = ((t < 0.15) | (t > 0.85)).astype(float)
    opening = bare + 0.6 * rest
    gap = 3.0 + 10.0 * opening
    found = np.ones(60, bool)
    found[30] = False
    scores = _pose_scores(np.where(found, gap, np.nan), found, opening, bare)
    assert scores["mouth_corr"] == pytest.approx(1.0, abs=1e-6)
    assert scores["mouth_corr_visemes"] < 0.9
    assert scores["face_found"] == pytest.approx(59 / 60, abs=1e-4)


def test_identity_report_compares_the_photo_mouth_state(turned_head) -> None:
    """The proxy's rest is the photo (its mouth included), its closed mouth is not; the
    report shows the mouth states it compares."""
    from services.training.photo_eval import identity_report

    report = identity_report(turned_head)
    assert report["proxy_rest"]["psnr"] > 35.0
    assert "subject" not in report
    gaps = report["inner_lip_gap_px"]
    assert gaps["proxy_rest"] == pytest.approx(gaps["photo"], rel=0.2, abs=1.0)
    if turned_head.rig.gap0 > 2.0:
        assert report["proxy_closed"]["psnr"] < report["proxy_rest"]["psnr"] - 5.0
    neutral = turned_head.render(turned_head.rest_state())[0][::-1].copy()  # a wrong frame
    assert identity_report(turned_head, neutral)["subject"]["psnr"] < 20.0
