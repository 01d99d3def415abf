"""ER-NeRF dataset layout: write → read round trip and validation errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from services.common.errors import InvalidInput
from services.common.types import AudioClip
from services.subjects.layout import (DatasetWriter, POSE_SCALE, blink_from_landmarks, labels_to_parsing,
                                      load_dataset, parsing_to_labels, split_ids)

N, S, FPS = 12, 32, 25


def _frames(rng: np.random.Generator):
    for i in range(N):
        y, x = np.mgrid[0:S, 0:S]
        image = np.stack([x * 6 + i, y * 7, np.full((S, S), 40 + i)], -1).astype(np.uint8)
        labels = rng.integers(0, 4, (S, S)).astype(np.uint8)
        torso = rng.integers(0, 256, (S, S, 4)).astype(np.uint8)
        lm = rng.uniform(0, S, (68, 2)).astype(np.float32)
        c2w = np.eye(4, dtype=np.float32)
        c2w[:3, :3] = np.linalg.qr(rng.normal(size=(3, 3)))[0]
        c2w[:3, 3] = rng.normal(size=3)
        yield image, lm, c2w, float(rng.choice([0.0, 0.25, 0.5, 1.0])), labels, torso


def _write(root: Path, n_audio_frames: int = N) -> list[tuple]:
    rng = np.random.default_rng(0)
    frames = list(_frames(rng))
    w = DatasetWriter(root, S, S, focal=40.0, cx=16.0, cy=16.0)
    for f in frames:
        w.add(*f)
    audio = AudioClip((0.1 * np.sin(np.arange(n_audio_frames * 640) * 0.05)).astype(np.float32), 16000)
    w.finish(audio, np.full((S, S, 3), 200, np.uint8), FPS, metadata={"oracle.json": {"seed": 3}}, video_name=None)
    return frames


def test_round_trip(tmp_path: Path) -> None:
    root = tmp_path / "ds"
    frames = _write(root)
    assert not (tmp_path / "ds.partial").exists()
    ds = load_dataset(root)
    assert len(ds) == N and (ds.width, ds.height) == (S, S)
    assert (ds.focal, ds.cx, ds.cy) == (40.0, 16.0, 16.0)
    assert list(ds.train) == list(range(10)) and list(ds.val) == [10, 11]
    np.testing.assert_array_equal(ds.poses, np.stack([f[2] for f in frames]))
    np.testing.assert_array_equal(ds.scene_poses()[:, :3, 3], ds.poses[:, :3, 3] * POSE_SCALE)
    np.testing.assert_array_equal(ds.landmarks, np.stack([f[1] for f in frames]))
    np.testing.assert_array_equal(ds.blink, np.array([f[3] for f in frames], np.float32))
    assert ds.blink_source == "au.csv"
    for k in (0, 7, 11):
        np.testing.assert_array_equal(ds.labels(k), frames[k][4])
        np.testing.assert_array_equal(ds.torso(k), frames[k][5])
        # JPEG is lossy by design of the layout: close, not identical
        assert np.abs(ds.image(k).astype(int) - frames[k][0]).mean() < 2
        assert np.abs(ds.gt_image(k).astype(int) - frames[k][0]).mean() < 2
    assert ds.audio.sample_rate == 16000 and abs(ds.audio.duration - N / FPS) < 1e-6
    assert ds.extras["oracle"] == {"seed": 3}
    # ER-NeRF reads au.csv with pandas and the column name ' AU45_r'
    header = (root / "au.csv").read_text().splitlines()[0]
    assert header.startswith("frame, face_id, timestamp") and ", AU45_r" in header
    t = json.loads((root / "transforms_train.json").read_text())
    assert set(t["frames"][0]) == {"img_id", "aud_id", "transform_matrix"}


def test_parsing_colours_round_trip() -> None:
    labels = np.array([[0, 1], [2, 3]], np.uint8)
    rgb = labels_to_parsing(labels)
    assert rgb[0, 1].tolist() == [255, 0, 0] and rgb[1, 0].tolist() == [0, 255, 0]
    assert rgb[1, 1].tolist() == [0, 0, 255] and rgb[0, 0].tolist() == [255, 255, 255]
    np.testing.assert_array_equal(parsing_to_labels(rgb), labels)


def test_split_is_ten_elevenths() -> None:
    train, val = split_ids(110)
    assert len(train) == 100 and val[0] == 100 and val[-1] == 109


def _error(root: Path) -> str:
    with pytest.raises(InvalidInput) as err:
        load_dataset(root)
    msg = str(err.value)
    assert "\n" not in msg
    return msg


def test_missing_files_are_named(tmp_path: Path) -> None:
    root = tmp_path / "ds"
    _write(root)
    (root / "parsing" / "3.png").unlink()
    (root / "ori_imgs" / "5.lms").unlink()
    msg = _error(root)
    assert "parsing/3.png" in msg and "ori_imgs/5.lms" in msg and "2 frame files missing" in msg
    (root / "bc.jpg").unlink()
    assert "missing bc.jpg" in _error(root)


def test_bad_json_is_named(tmp_path: Path) -> None:
    root = tmp_path / "ds"
    _write(root)
    (root / "transforms_val.json").write_text("{not json")
    assert "transforms_val.json is not valid JSON" in _error(root)
    (root / "transforms_val.json").write_text(json.dumps({"focal_len": 40, "cx": 16, "cy": 16,
                                                          "frames": [{"img_id": 11, "transform_matrix": [[1, 0], [0, 1]]}]}))
    assert "transform_matrix must be a 4x4" in _error(root)


def test_inconsistent_frame_count(tmp_path: Path) -> None:
    root = tmp_path / "ds"
    _write(root, n_audio_frames=N + 40)  # audio 1.6 s longer than the video
    msg = _error(root)
    assert "12 frames but aud.wav lasts 2.08 s" in msg


def test_inconsistent_sizes_and_landmarks(tmp_path: Path) -> None:
    root = tmp_path / "ds"
    _write(root)
    Image.new("RGB", (S + 2, S)).save(root / "ori_imgs" / "11.jpg")
    np.savetxt(root / "ori_imgs" / "0.lms", np.zeros((5, 2)))
    msg = _error(root)
    assert "ori_imgs/11.jpg is 34x32 but bc.jpg is 32x32" in msg and "ori_imgs/0.lms must hold 68 rows" in msg


def test_short_au_csv_and_landmark_blink_fallback(tmp_path: Path) -> None:
    root = tmp_path / "ds"
    _write(root)
    lines = (root / "au.csv").read_text().splitlines()
    (root / "au.csv").write_text("\n".join(lines[:5]) + "\n")
    assert "au.csv has 4 rows but frames go up to img_id 11" in _error(root)
    (root / "au.csv").unlink()
    ds = load_dataset(root)
    assert ds.blink_source == "landmarks" and ds.blink.shape == (N,)


def test_blink_from_landmarks_sees_closed_eyes() -> None:
    lm = np.zeros((3, 68, 2), np.float32)
    for eye in (36, 42):
        lm[:, eye] = (0, 0)
        lm[:, eye + 3] = (30, 0)
        for a, b in ((1, 5), (2, 4)):
            lm[:, eye + a] = (10 * a, -5)
            lm[:, eye + b] = (10 * a, 5)
    lm[2, [37, 38, 43, 44], 1] = 4.5  # frame 2: upper lids down on the lower lids
    blink = blink_from_landmarks(lm)
    assert blink[0] < 0.05 and blink[2] > 0.9


def test_writer_refuses_existing_and_missing_dataset(tmp_path: Path) -> None:
    (tmp_path / "taken").mkdir()
    with pytest.raises(InvalidInput, match="already exists"):
        DatasetWriter(tmp_path / "taken", S, S, 40, 16, 16)
    with pytest.raises(InvalidInput, match="not a directory"):
        load_dataset(tmp_path / "nope")
