"""`talking-head eval` frame scores: known answers on oracle frames."""

from __future__ import annotations

import math

import numpy as np

from services.common.types import AudioClip, PhonemeTiming, Speech
from services.training.evaluation import score_frames
from services.subjects.oracle import OracleSubject


def _truth():
    timings = [PhonemeTiming("sil", 0.0, 0.1), PhonemeTiming("ɑ", 0.1, 0.3), PhonemeTiming("sil", 0.3, 0.4)]
    speech = Speech(AudioClip(np.zeros(int(0.4 * 16000), np.float32), 16000), timings, "a", "en", "test")
    return OracleSubject(64, seed=3).ground_truth(speech, 25)


def test_background_psnr_sees_only_background_errors() -> None:
    truth = _truth()
    bg = truth.background
    assert bg.shape == truth.images.shape[:3] and 0.2 < bg.mean() < 0.95
    # a dark floater: every background pixel 10/255 off, the person untouched
    floater = truth.images.astype(np.int16)
    floater[bg] -= 10
    s = score_frames(np.clip(floater, 0, 255).astype(np.uint8), truth.images, truth.landmarks, bg)
    assert math.isclose(s["bg_psnr"], 20 * math.log10(255 / 10), abs_tol=0.3)  # a few pixels clip at 0
    assert math.isclose(s["psnr"], s["bg_psnr"] - 10 * math.log10(bg.mean()), abs_tol=0.3)
    # an error on the person leaves the background score perfect
    person = truth.images.copy()
    person[~bg] //= 2
    s = score_frames(person, truth.images, truth.landmarks, bg)
    assert s["bg_psnr"] >= 100 and s["psnr"] < 30
