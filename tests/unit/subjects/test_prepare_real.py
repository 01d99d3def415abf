"""`subject prepare` on real footage (the first 11 s of the 256² clip in ../shared/data/real;
skipped when it is absent): the dataset validates and feeds training, landmarks sit on the
face, the pose track is smooth, parsing areas are plausible; every bad input is one clear
error that leaves nothing behind."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy.spatial.transform import Rotation

from services.common.errors import InvalidInput
from services.subjects.layout import LABEL_BG, LABEL_HEAD, LABEL_NECK, LABEL_TORSO, load_dataset

SECONDS, FPS = 11.0, 25
N = int(SECONDS * FPS)


@pytest.fixture(scope="module")
def clip(real_clip, clip_writer, preprocess_extra, tmp_path_factory) -> Path:
    frames, audio, fps = real_clip(SECONDS)
    return clip_writer(tmp_path_factory.mktemp("clip") / "lieu11.mp4", frames, fps, audio)


@pytest.fixture(scope="module")
def dataset(clip, tmp_path_factory):
    from services.subjects.prepare import prepare

    root = prepare(clip, "lieu11", out=tmp_path_factory.mktemp("datasets") / "lieu11", progress=False)
    return load_dataset(root)


def test_prepared_dataset_validates(dataset) -> None:
    ds = dataset
    assert len(ds) == N and (ds.width, ds.height) == (256, 256)
    assert ds.audio.sample_rate == 16_000 and ds.audio.duration == pytest.approx(N / FPS, abs=0.01)
    assert len(ds.val) == N - int(N * 10 / 11) and ds.blink_source == "au.csv"
    assert 1.0 * 256 < ds.focal < 5.0 * 256  # a plausible lens: 15°–53° across the crop
    assert not (ds.root.parent / "lieu11.partial").exists()
    preview = Image.open(ds.root / "preview.png")
    assert preview.size[0] > 800 and preview.size[1] > 600
    sync = json.loads((ds.root / "prepare.json").read_text())["av_offset"]
    assert abs(sync["frames"]) <= 15 and -1 <= sync["corr_at_zero"] <= sync["corr"] <= 1
    assert isinstance(sync["applied"], bool) and sync["seconds"] == pytest.approx(sync["frames"] / FPS)


def test_training_reads_the_dataset(dataset) -> None:
    from services.training.data import HEAD, NECK, TORSO, training_data

    data = training_data(dataset, features=None, progress=False)
    assert data.images.shape == (N, 256, 256, 3) and data.poses.shape == (N, 4, 4)
    present = set(np.unique(data.labels.numpy()).tolist())
    assert {HEAD, NECK, TORSO} <= present
    lips = data.lips.numpy()
    assert np.all(lips[:, 2] > lips[:, 0]) and np.all(lips[:, 3] > lips[:, 1])


def test_landmarks_fall_inside_the_face(dataset) -> None:
    """Checked against MediaPipe's face detector, a model independent of FaceMesh."""
    from services.subjects.prepare.landmarks import mediapipe

    with mediapipe().solutions.face_detection.FaceDetection(model_selection=1) as detector:
        for k in (0, N // 2, N - 1):
            image = dataset.image(k)
            box = detector.process(image).detections[0].location_data.relative_bounding_box
            x0, y0 = box.xmin * 256, box.ymin * 256
            w, h = box.width * 256, box.height * 256
            lm = dataset.landmarks[k]
            inner = lm[17:]  # brows, nose, eyes, lips: inside the detector's box (5 % margin)
            assert np.all((inner[:, 0] > x0 - 0.05 * w) & (inner[:, 0] < x0 + 1.05 * w))
            assert np.all((inner[:, 1] > y0 - 0.05 * h) & (inner[:, 1] < y0 + 1.05 * h))
            jaw = lm[:17]  # the jaw line reaches the ears and below the chin: 25 % margin
            assert np.all((jaw[:, 0] > x0 - 0.25 * w) & (jaw[:, 0] < x0 + 1.25 * w))
            assert np.all((jaw[:, 1] > y0 - 0.25 * h) & (jaw[:, 1] < y0 + 1.25 * h))
            labels = dataset.labels(k)
            on_head = labels[np.round(inner[:, 1]).astype(int), np.round(inner[:, 0]).astype(int)] == LABEL_HEAD
            assert on_head.mean() > 0.95


def test_pose_track_is_smooth(dataset) -> None:
    c2w = dataset.poses.astype(np.float64)
    rot = Rotation.from_matrix(c2w[:, :3, :3])
    step = np.degrees((rot[1:].inv() * rot[:-1]).magnitude())
    assert step.max() < 4.0 and np.percentile(step, 95) < 2.0  # degrees per frame
    head_in_camera = -np.einsum("nji,nj->ni", c2w[:, :3, :3], c2w[:, :3, 3])  # w2c translation
    moves = np.linalg.norm(np.diff(head_in_camera, axis=0), axis=1)
    assert moves.max() < 0.015  # metres per frame
    assert np.all((0.3 < -head_in_camera[:, 2]) & (-head_in_camera[:, 2] < 3.0))  # in front of the camera
    assert np.degrees(rot.magnitude()).max() < 40  # facing the camera, roughly


def test_head_sits_at_the_renderer_origin(dataset) -> None:
    """Rays through the face's landmarks (renderer space, as training casts them) pass by the
    origin at head-sized distances: the nose close, the chin half the AABB's height away."""
    import torch

    from services.renderer.rays import get_rays
    from services.training.data import dataset_intrinsics, renderer_poses

    frames = np.arange(0, N, 25)
    origins, dirs = get_rays(renderer_poses(dataset.poses[frames]), dataset_intrinsics(dataset))
    for point, (lo, hi) in ((30, (0.0, 0.3)), (62, (0.1, 0.45)), (8, (0.3, 0.75))):  # nose tip, lips, chin
        px = np.round(dataset.landmarks[frames, point]).astype(int)
        rows = torch.arange(len(frames)), torch.from_numpy(px[:, 1] * 256 + px[:, 0])
        o, d = origins[rows], dirs[rows]
        closest = o - (o * d).sum(-1, keepdim=True) * d
        assert torch.all((closest.norm(dim=-1) > lo) & (closest.norm(dim=-1) < hi)), point
    assert torch.all((origins[:, 0].norm(dim=-1) > 1.5) & (origins[:, 0].norm(dim=-1) < 8))  # camera outside the AABB


def test_parsing_areas_are_plausible(dataset) -> None:
    areas = np.array([np.bincount(dataset.labels(k).ravel(), minlength=4) for k in range(0, N, 5)]) / 256 ** 2
    assert np.all((areas[:, LABEL_HEAD] > 0.2) & (areas[:, LABEL_HEAD] < 0.65))
    assert np.all(areas[:, LABEL_TORSO] > 0.02) and np.all(areas[:, LABEL_BG] > 0.1)
    assert np.mean(areas[:, LABEL_NECK] > 0.005) > 0.8
    # the clean background agrees with the frames where they show background
    k = N // 3
    bg = dataset.labels(k) == LABEL_BG
    diff = np.abs(dataset.background.astype(float) - dataset.image(k).astype(float)).mean(-1)
    assert np.median(diff[bg]) < 10
    # gt_imgs: the person as filmed, the background replaced by bc.jpg
    gt = dataset.gt_image(k).astype(float)
    person = ~bg
    assert np.median(np.abs(gt - dataset.image(k)).mean(-1)[person]) < 3
    assert np.median(np.abs(gt - dataset.background).mean(-1)[bg]) < 3
    torso = dataset.torso(k)
    assert np.all(torso[..., 3][dataset.labels(k) == LABEL_TORSO] == 255) and np.all(torso[..., 3][bg] == 0)


def test_blink_track(dataset) -> None:
    assert dataset.blink.min() >= 0 and dataset.blink.max() <= 1
    assert np.median(dataset.blink) < 0.15 and dataset.blink.max() > 0.7  # the speaker blinks every few seconds


# ---- bad input ------------------------------------------------------------------------------


def _tile(frames):
    return [np.concatenate([f, f], axis=1) for f in frames]


def _small(frames):
    import cv2

    return [cv2.resize(f, (112, 112), interpolation=cv2.INTER_AREA) for f in frames]


def _lost(frames):
    return [np.zeros_like(f) if 100 <= k < 200 else f for k, f in enumerate(frames)]


BAD_CLIPS = {
    # name: (frames → frames, keep audio, seconds, error)
    "short": (None, True, 5.0, r"5\.0 s long; prepare needs at least 10 s"),
    "no_audio": (None, False, SECONDS, "has no audio track"),
    "two_faces": (_tile, True, SECONDS, "two or more faces"),
    "small_face": (_small, True, SECONDS, r"only about \d+ px tall; prepare needs at least 100 px"),
    "face_lost": (_lost, True, SECONDS, "face is lost .* for frames 100–199 "),
    "no_face": (lambda fs: [np.zeros_like(f) for f in fs], True, SECONDS, "no face found"),
}


@pytest.mark.parametrize("case", list(BAD_CLIPS))
def test_bad_video_is_one_clear_error_and_leaves_nothing(case, real_clip, clip_writer, preprocess_extra,
                                                         tmp_path) -> None:
    from services.subjects.prepare import prepare

    change, keep_audio, seconds, error = BAD_CLIPS[case]
    frames, audio, fps = real_clip(SECONDS)
    frames = frames[:round(seconds * fps)]
    path = clip_writer(tmp_path / f"{case}.mp4", change(frames) if change else frames, fps,
                       audio[:int(seconds * 16_000)] if keep_audio else None)
    out = tmp_path / "ds"
    with pytest.raises(InvalidInput, match=error):
        prepare(path, "x", out=out, progress=False)
    assert not out.exists() and not (tmp_path / "ds.partial").exists()


def _png(path: Path) -> Path:
    Image.fromarray(np.zeros((256, 256, 3), np.uint8)).save(path, format="PNG")
    return path


BAD_FILES = {
    "still_image": (lambda p: _png(p), "is a still image"),
    "empty": (lambda p: p.write_bytes(b""), r"empty \(0 bytes\)"),
    "undecodable": (lambda p: p.write_bytes(np.random.default_rng(0).bytes(50_000)), "could not decode"),
    "missing": (lambda p: None, "video not found"),
}


@pytest.mark.parametrize("case", list(BAD_FILES))
def test_bad_file_is_one_clear_error(case, tmp_path) -> None:
    from services.subjects.prepare import prepare

    make, error = BAD_FILES[case]
    path = tmp_path / "video.mp4"  # every one named like a video
    make(path)
    with pytest.raises(InvalidInput, match=error):
        prepare(path, "x", out=tmp_path / "ds", progress=False)
    assert not (tmp_path / "ds").exists()


def test_cli_bad_input_is_one_line_and_exit_2(tmp_path) -> None:
    empty = tmp_path / "talk.mp4"
    empty.write_bytes(b"")
    r = subprocess.run([sys.executable, "-m", "services.cli", "subject", "prepare", str(empty), "--name", "x",
                        "--out", str(tmp_path / "ds")], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and r.stderr.strip().count("\n") == 0 and "empty" in r.stderr
    assert not (tmp_path / "ds").exists()


def test_interrupted_run_leaves_nothing_train_accepts(clip, tmp_path) -> None:
    out = tmp_path / "ds"
    partial = tmp_path / "ds.partial"
    proc = subprocess.Popen([sys.executable, "-m", "services.cli", "subject", "prepare", str(clip), "--name", "x",
                             "--out", str(out)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env=dict(os.environ, OMP_NUM_THREADS="1"))
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            if len(list((partial / "ori_imgs").glob("*.jpg"))) >= 20:
                break
            time.sleep(0.1)
        assert proc.poll() is None, "prepare finished before it could be interrupted"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    assert not out.exists() and partial.is_dir()
    with pytest.raises(InvalidInput, match="missing transforms_train.json"):
        load_dataset(partial)
