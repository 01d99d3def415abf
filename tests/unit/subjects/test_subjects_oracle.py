"""The oracle subject: geometry, landmarks, blink, determinism, dataset writing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from services.common.errors import InvalidInput
from services.common.types import AudioClip, PhonemeTiming, Speech
from services.subjects.layout import POSE_SCALE, load_dataset
from services.subjects.oracle import OracleSubject
from services.subjects.oracle_render import landmarks_3d
from services.subjects.oracle_scene import PART, FaceState
from services.subjects.synth import write_oracle_dataset

SIZE = 96


@pytest.fixture(scope="module")
def oracle() -> OracleSubject:
    return OracleSubject(SIZE, seed=1)


def _speech() -> Speech:
    labels = [("sil", 0.2), ("h", 0.06), ("ɑ", 0.2), ("m", 0.08), ("u", 0.16), ("sil", 0.3)]
    timings, t = [], 0.0
    for label, dur in labels:
        timings.append(PhonemeTiming(label, t, t + dur))
        t += dur
    audio = AudioClip(np.zeros(int(t * 22050), np.float32), 22050)
    return Speech(audio, timings, "hamu", "en", "test")


def test_open_mouth_shows_interior(oracle: OracleSubject) -> None:
    closed = oracle.frame(FaceState(0.0, 0.1, 0.0))
    half = oracle.frame(FaceState(0.5, 0.1, 0.0))
    wide = oracle.frame(FaceState(1.0, 0.1, 0.0))
    counts = [f.mouth_interior.sum() for f in (closed, half, wide)]
    assert counts[0] == 0 and 0 < counts[1] < counts[2]
    # and its dark part is much darker than the skin
    parts = oracle.renderer.parts(FaceState(1.0, 0.1, 0.0))
    assert wide.image[parts == PART["cavity"]].mean() < wide.image[parts == PART["jaw"]].mean() - 60


def test_blink_closes_the_eyes(oracle: OracleSubject) -> None:
    eyes = (PART["eye_r"], PART["eye_l"])
    open_ = np.isin(oracle.renderer.parts(FaceState(0.0, 0.1, 0.0)), eyes).sum()
    shut = np.isin(oracle.renderer.parts(FaceState(0.0, 0.1, 1.0)), eyes).sum()
    assert open_ > 10 and shut == 0


def test_landmarks_inside_image_and_inner_lips_open(oracle: OracleSubject) -> None:
    closed = oracle.frame(FaceState(0.0, 0.1, 0.0)).meta
    wide = oracle.frame(FaceState(1.0, 0.1, 0.0)).meta
    for m in (closed, wide):
        assert m.landmarks.shape == (68, 2)
        assert (m.landmarks > 0).all() and (m.landmarks < SIZE - 1).all()
        # iBUG order: jaw point 0 on the image left, 16 on the right, chin (8) lowest
        assert m.landmarks[0, 0] < m.landmarks[8, 0] < m.landmarks[16, 0]
        assert m.landmarks[8, 1] == m.landmarks[:17, 1].max()
    assert closed.inner_lip_gap < 0.5
    assert wide.inner_lip_gap > closed.inner_lip_gap + 3
    # outer lips enclose the inner lips
    assert wide.landmarks[51, 1] < wide.landmarks[62, 1] < wide.landmarks[66, 1] < wide.landmarks[57, 1]


def test_written_pose_reprojects_landmarks(oracle: OracleSubject) -> None:
    states = oracle.states(_speech(), 25)
    f = oracle.frame(states[10])
    c2w = f.meta.c2w.copy()
    c2w[:3, 3] *= POSE_SCALE  # file units → scene units, as a trainer reads them
    reproj = oracle.renderer.camera.project(landmarks_3d(states[10]), c2w)
    np.testing.assert_allclose(reproj, f.meta.landmarks, atol=1e-3)
    assert abs(np.linalg.det(c2w[:3, :3]) - 1) < 1e-5
    # the camera sits a few units from the head, looking at it through the AABB
    assert 3.0 < np.linalg.norm(c2w[:3, 3]) < 5.0


def test_parsing_regions(oracle: OracleSubject) -> None:
    f = oracle.frame(FaceState(0.3, 0.1, 0.0))
    assert set(np.unique(f.labels)) == {0, 1, 2, 3}
    assert f.labels[0, 0] == 0 and f.labels[SIZE // 3, SIZE // 2] == 1 and f.labels[-1, SIZE // 2] == 3
    # the torso layer is opaque exactly where neck/torso are, even behind the head
    assert (f.torso[..., 3][f.labels >= 2] == 255).mean() > 0.9
    assert (f.torso[..., 3][f.labels == 0] == 0).mean() > 0.9


def test_ground_truth_is_deterministic_and_tracks_speech(oracle: OracleSubject) -> None:
    speech = _speech()
    a = oracle.ground_truth(speech, 25)
    b = OracleSubject(SIZE, seed=1).ground_truth(speech, 25)
    np.testing.assert_array_equal(a.images, b.images)
    np.testing.assert_array_equal(a.c2w, b.c2w)
    assert len(a.images) == int(speech.audio.duration * 25)
    other = OracleSubject(SIZE, seed=2)
    assert not np.array_equal(other.frame(other.states(speech, 25)[5]).image, a.images[5])
    # the mouth measured on the image follows the viseme track
    assert np.corrcoef(a.mouth_open, a.inner_lip_gap)[0, 1] > 0.9
    assert a.mouth_open[:3].max() < 0.1 and a.mouth_open.max() > 0.6


def test_motion_and_blinks_are_smooth() -> None:
    o = OracleSubject(32, seed=0)
    speech = Speech(AudioClip(np.zeros(16000 * 8, np.float32), 16000), [PhonemeTiming("sil", 0, 8)], "", "en", "t")
    states = o.states(speech, 25)
    blink = np.array([s.blink for s in states])
    assert blink.max() > 0.99 and (blink < 0.01).mean() > 0.8  # blinks happen, eyes mostly open
    t = np.stack([s.head_to_body[:3, 3] for s in states])
    assert np.abs(np.diff(t, axis=0)).max() < 0.005  # no jumps between frames
    assert t.std(0).max() > 1e-3  # but the head does move


def test_oracle_dataset_loads(tmp_path: Path) -> None:
    o = OracleSubject(48, seed=0)
    root = write_oracle_dataset(tmp_path / "mini", _speech(), o, fps=25, video=False, progress=False)
    ds = load_dataset(root)
    assert len(ds) == 25 and ds.width == 48 and ds.extras["oracle"]["frames"] == 25
    assert ds.blink_source == "au.csv" and ds.labels(3).max() == 3
    with pytest.raises(InvalidInput):
        OracleSubject(31)


def test_mouth_measure_on_images_follows_truth() -> None:
    from services.subjects.measure import mouth_gap_px, mouth_interior_mask

    o = OracleSubject(160, seed=0)
    gaps, truth = [], []
    for opening in (0.0, 0.3, 0.6, 0.9):
        f = o.frame(FaceState(opening, 0.3, 0.0))
        gaps.append(mouth_gap_px(f.image, f.meta.landmarks))
        truth.append(f.meta.inner_lip_gap)
        if opening > 0.5:
            est = mouth_interior_mask(f.image, f.meta.landmarks)
            assert (est & f.mouth_interior).sum() / (est | f.mouth_interior).sum() > 0.7
    assert np.corrcoef(gaps, truth)[0, 1] > 0.95 and gaps[-1] > gaps[0] + 3
