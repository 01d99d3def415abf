"""Per-frame windows: frame counts, alignment rules and rate checks (DESIGN.md §1)."""

import numpy as np
import pytest
import torch

from services.common.audio import wav2lip_mel
from services.common.errors import RateMismatch
from services.common.types import AudioClip
from services.encoder.features import (AudioFeatures, ContentFrames, content_windows, extract_features,
                                       frame_count, mel_windows)
from services.encoder.model import EncoderConfig, build_encoder


def _clip(seconds: float, rate: int = 16000) -> AudioClip:
    rng = np.random.default_rng(0)
    return AudioClip((0.1 * rng.standard_normal(int(seconds * rate))).astype(np.float32), rate)


@pytest.mark.parametrize("seconds,fps,frames", [(2.0, 25, 50), (1.3, 25, 33), (2.0, 30, 60), (0.01, 25, 1)])
def test_frame_count_is_fps_times_duration(seconds, fps, frames):
    feats = extract_features(_clip(seconds), fps=fps)
    assert frame_count(seconds, fps) == frames
    assert feats.n_frames == frames
    assert feats.mel_windows.shape == (frames, 1, 80, 16)


@pytest.mark.parametrize("fps", [25, 30])
def test_mel_window_i_starts_at_int_80i_over_fps(fps):
    clip = _clip(1.5)
    mel = wav2lip_mel(clip.samples)
    wins = mel_windows(mel, frame_count(clip.duration, fps), fps)
    for i in (0, 7, 20):
        s = int(80 * i / fps)
        np.testing.assert_array_equal(wins[i, 0], mel[:, s:s + 16])
    # the last windows run past the audio and are padded with silence (-4)
    assert wins[-1, 0, :, -1].max() == -4.0


def test_content_window_is_centred_on_2i_at_25fps():
    values = np.arange(100, dtype=np.float32)[:, None].repeat(3, 1)
    wins = content_windows(ContentFrames(values), 50, 25)
    assert wins.shape == (50, 16, 3)
    assert wins[10, 8, 0] == 20 and wins[10, 0, 0] == 12 and wins[10, 15, 0] == 27
    assert wins[0, 0, 0] == 0  # left edge repeats frame 0


def test_non_16k_audio_is_a_rate_mismatch():
    with pytest.raises(RateMismatch):
        extract_features(_clip(1.0, 22050))


def test_content_at_wrong_rate_is_a_rate_mismatch():
    with pytest.raises(RateMismatch):
        extract_features(_clip(1.0), content=ContentFrames(np.ones((100, 4), np.float32), fps=100))


def test_encoder_refuses_features_cut_at_other_rates():
    feats = extract_features(_clip(0.5))
    bad = AudioFeatures(fps=25, n_frames=feats.n_frames, mel_windows=feats.mel_windows, mel_fps=100)
    enc = build_encoder(EncoderConfig(conv_width=4))
    with pytest.raises(RateMismatch):
        enc(bad)


def test_frames_selects_a_subset():
    feats = extract_features(_clip(1.0))
    sub = feats.frames(torch.tensor([3, 4, 5]))
    assert sub.n_frames == 3
    torch.testing.assert_close(sub.mel_windows, feats.mel_windows[3:6])
