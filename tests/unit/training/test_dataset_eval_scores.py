"""`eval --dataset` scores on synthetic arrays with known answers (no MediaPipe needed)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from services.training.dataset_eval import (
    INNER_LIPS,
    LMD_SIDE,
    MOUTH,
    below_static,
    check_goals,
    image_scores,
    mouth_scores,
)


def _mesh(t: int, seed: int = 0) -> np.ndarray:
    """[t, 478, 2] points in a 512-px frame whose inner-lip gap changes from frame to frame."""
    rng = np.random.default_rng(seed)
    mesh = rng.uniform(100, 400, size=(1, 478, 2)).repeat(t, axis=0)
    mesh[:, INNER_LIPS[0]] = (256, 300)
    mesh[:, INNER_LIPS[1], 0] = 256
    mesh[:, INNER_LIPS[1], 1] = 300 + rng.uniform(0, 30, size=t)
    return mesh


def test_a_shifted_face_has_lmd_of_its_shift_at_256_and_no_shape_error() -> None:
    real = _mesh(20)
    rendered = real + np.array([6.0, 8.0])  # 10 px at 512² is 5 px at 256²
    s = mouth_scores(rendered, real, side=512)
    assert LMD_SIDE == 256
    assert s["lmd"] == pytest.approx(5.0) and s["lmd_shape"] == pytest.approx(0.0, abs=1e-9)
    assert s["mouth_corr"] == pytest.approx(1.0) and s["face_found"] == 1.0
    assert s["per_frame"]["gap_real"] == pytest.approx(s["per_frame"]["gap_rendered"])


def test_a_wrong_mouth_shape_shows_in_both_distances_and_the_correlation() -> None:
    real = _mesh(30, seed=1)
    rendered = real.copy()
    rendered[:, INNER_LIPS[1], 1] = real[::-1, INNER_LIPS[1], 1]  # the gap played backwards
    s = mouth_scores(rendered, real, side=LMD_SIDE)
    gap = real[:, INNER_LIPS[1], 1] - real[:, INNER_LIPS[0], 1]
    moved = np.abs(gap - gap[::-1])
    # one of the 20 mouth points moved: lmd is its mean over the mouth
    assert s["lmd"] == pytest.approx(float(np.mean(moved)) / len(MOUTH), abs=1e-4)
    assert 0 < s["lmd_shape"] <= s["lmd"] * 2
    assert s["mouth_corr"] == pytest.approx(float(np.corrcoef(gap, gap[::-1])[0, 1]), abs=1e-3)


def test_frames_without_a_face_are_left_out_and_counted() -> None:
    real = _mesh(10)
    rendered = real + 1.0
    rendered[[2, 5]] = np.nan
    real[7] = np.nan
    s = mouth_scores(rendered, real, side=LMD_SIDE)
    assert s["face_found"] == pytest.approx(0.7)
    lmd = s["per_frame"]["lmd"]
    assert np.isnan(lmd[[2, 5, 7]]).all() and np.allclose(np.delete(lmd, [2, 5, 7]), math.sqrt(2))
    assert s["lmd"] == pytest.approx(math.sqrt(2), abs=1e-4)  # means are rounded to 4 places
    none = mouth_scores(np.full_like(real, np.nan), real, side=LMD_SIDE)
    assert none["lmd"] is None and none["mouth_corr"] is None and none["face_found"] == 0.0


def test_a_still_mouth_has_no_correlation() -> None:
    real = _mesh(12)
    static = np.repeat(real[:1], 12, axis=0)  # the static baseline: one frame repeated
    s = mouth_scores(static, real, side=LMD_SIDE)
    assert s["mouth_corr"] is None and s["lmd"] > 0


def test_landmark_stacks_must_match() -> None:
    with pytest.raises(ValueError, match="landmark stacks"):
        mouth_scores(_mesh(3), _mesh(4), side=LMD_SIDE)
    with pytest.raises(ValueError, match="landmark stacks"):
        mouth_scores(_mesh(3)[:, :68], _mesh(3)[:, :68], side=LMD_SIDE)


def test_image_scores_per_frame() -> None:
    rng = np.random.default_rng(0)
    truth = rng.integers(20, 230, size=(3, 32, 32, 3), dtype=np.uint8)
    off = truth.copy()
    off[1] += 10  # frame 1 is 10/255 off everywhere, the others exact
    s = image_scores(off, truth)
    assert s["psnr"][1] == pytest.approx(20 * math.log10(25.5))
    assert s["psnr"][0] >= 100 and s["psnr"][2] >= 100
    assert s["ssim"][0] == pytest.approx(1.0) and s["ssim"][1] < 1.0
    with pytest.raises(ValueError):
        image_scores(off[:2], truth)


def test_head_setting_takes_the_real_body_pixels() -> None:
    rng = np.random.default_rng(1)
    truth = rng.integers(20, 230, size=(2, 16, 16, 3), dtype=np.uint8)
    off = truth.copy()
    body = np.zeros((2, 16, 16), bool)
    body[:, 8:] = True  # the lower half is neck and torso
    off[:, 8:] += 20  # a wrong torso
    off[1, :8] += 10  # frame 1 also has a wrong head half
    s = image_scores(off, truth, body)
    assert s["psnr"][0] == pytest.approx(20 * math.log10(255 / 20) + 10 * math.log10(2))
    assert s["psnr_head"][0] >= 100  # the head half is exact
    assert s["psnr_head"][1] == pytest.approx(20 * math.log10(25.5) + 10 * math.log10(2))
    assert "psnr_head" not in image_scores(off, truth)
    with pytest.raises(ValueError, match="body mask"):
        image_scores(off, truth, body[:1])


def test_goals_and_the_distance_below_the_baseline() -> None:
    assert below_static(3.0, 5.0) == pytest.approx(0.4)
    assert below_static(6.0, 5.0) == pytest.approx(-0.2)
    assert below_static(None, 5.0) is None and below_static(1.0, None) is None and below_static(1.0, 0.0) is None
    goals = check_goals({"psnr": 31.0, "mouth_corr": 0.5}, 0.4)
    assert list(goals.values()) == [True, False, True]
    assert all("static" in k or ">=" in k for k in goals)
    assert list(check_goals({"psnr": None, "mouth_corr": None}, None).values()) == [None, None, None]
