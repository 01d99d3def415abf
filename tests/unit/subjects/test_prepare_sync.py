"""The sound's offset from the lips (services.subjects.prepare.sync) on synthetic mouths and
sounds with a known delay."""

from __future__ import annotations

import numpy as np
import pytest

from services.common.types import AudioClip
from services.subjects.prepare.landmarks import IBUG68, N_MESH
from services.subjects.prepare.sync import estimate_offset, mouth_opening, shift_audio

FPS, SR, N = 25, 16_000, 400


def _opening(seed: int) -> np.ndarray:
    """A syllable-like mouth opening in [0, 1]: smoothed noise, N frames."""
    rng = np.random.default_rng(seed)
    x = np.convolve(rng.standard_normal(N + 8), np.hanning(7), mode="same")[4:N + 4]
    return (x - x.min()) / (x.max() - x.min())


def _mesh(opening: np.ndarray) -> np.ndarray:
    """FaceMesh points whose outer lips part by `opening` (eyes 60 px apart)."""
    mesh = np.zeros((len(opening), N_MESH, 3))
    mesh[:, IBUG68[36], 0], mesh[:, IBUG68[45], 0] = 100, 160
    mesh[:, IBUG68[51], 1] = 200
    mesh[:, IBUG68[57], 1] = 205 + 20 * opening
    return mesh


def _speech(opening: np.ndarray, delay_frames: int, seed: int = 1) -> AudioClip:
    """Noise as loud as the mouth is open, `delay_frames` after it (earlier when negative)."""
    rng = np.random.default_rng(seed)
    per = SR // FPS
    loud = np.roll(opening, delay_frames)
    env = np.repeat(0.02 + loud, per)
    return AudioClip((rng.standard_normal(N * per) * env * 0.3).astype(np.float32), SR)


def test_mouth_opening_is_the_lip_gap_over_the_eye_distance() -> None:
    o = _opening(0)
    assert mouth_opening(_mesh(o)) == pytest.approx((5 + 20 * o) / 60)


@pytest.mark.parametrize("delay", [6, -4])
def test_a_delayed_sound_is_found_and_moved_back_into_sync(delay: int) -> None:
    o = _opening(0)
    clip = _speech(o, delay)
    found = estimate_offset(_mesh(o), clip, FPS)
    assert found.frames == delay and found.applied
    assert found.corr > 0.8 and found.corr - found.corr_at_zero > 0.15
    moved = shift_audio(clip, found.frames, FPS)
    assert len(moved.samples) == len(clip.samples) and moved.sample_rate == SR
    again = estimate_offset(_mesh(o), moved, FPS)
    assert again.frames == 0 and not again.applied


def test_sound_unrelated_to_the_mouth_is_left_alone() -> None:
    found = estimate_offset(_mesh(_opening(0)), _speech(_opening(7), 0), FPS)
    assert not found.applied and found.corr < 0.3


def test_shift_moves_samples_by_whole_frames_and_pads_with_silence() -> None:
    x = np.zeros(SR, np.float32)
    x[5000] = 1.0
    clip = AudioClip(x, SR)
    early = shift_audio(clip, 2, FPS).samples  # 2 frames = 1280 samples earlier
    late = shift_audio(clip, -2, FPS).samples
    assert early[5000 - 1280] == 1.0 and early.sum() == 1.0 and not early[-1280:].any()
    assert late[5000 + 1280] == 1.0 and late.sum() == 1.0 and not late[:1280].any()
    assert shift_audio(clip, 0, FPS) is clip
