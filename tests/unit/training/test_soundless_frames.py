"""Frames without sound of their own (prepare moved the audio to sync it): which they are,
that `eval --dataset` leaves them out of its scores and that training does not train on them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from services.common.errors import InvalidInput
from services.common.types import AudioClip
from services.subjects.layout import DatasetWriter, load_dataset
from services.subjects.prepare.sync import shift_audio
from services.training.data import training_data
from services.training.dataset_eval import held_out_record, scored_held_out

N, S, FPS, SR = 22, 16, 25, 16_000  # 22 frames: the last 2 are held out (1/11)


def _dataset(root: Path, offset: int | None, applied: bool = True, audio: AudioClip | None = None):
    rng = np.random.default_rng(0)
    w = DatasetWriter(root, S, S, focal=20.0, cx=8.0, cy=8.0)
    for _ in range(N):
        w.add(rng.integers(0, 256, (S, S, 3)).astype(np.uint8), rng.uniform(0, S, (68, 2)).astype(np.float32),
              np.eye(4, dtype=np.float32), 0.0, rng.integers(0, 4, (S, S)).astype(np.uint8),
              rng.integers(0, 256, (S, S, 4)).astype(np.uint8))
    audio = audio or AudioClip(np.full(N * SR // FPS, 0.1, np.float32), SR)
    meta = {} if offset is None else {"prepare.json": {"av_offset": {"frames": offset, "applied": applied}}}
    w.finish(audio, np.zeros((S, S, 3), np.uint8), FPS, metadata=meta, video_name=None)
    return load_dataset(root)


@pytest.mark.parametrize("offset", [3, -2])
def test_the_soundless_frames_are_where_the_shift_left_silence(tmp_path: Path, offset: int) -> None:
    """Sound moved earlier (offset > 0) leaves the last frames silent, moved later the first."""
    moved = shift_audio(AudioClip(np.ones(N * SR // FPS, np.float32), SR), offset, FPS)
    ds = _dataset(tmp_path / "ds", offset, audio=moved)
    silent = np.flatnonzero(np.abs(moved.samples.reshape(N, -1)).max(axis=1) == 0)
    assert len(silent) == abs(offset)
    np.testing.assert_array_equal(ds.soundless, silent)


@pytest.mark.parametrize("offset,applied", [(None, True), (0, True), (4, False)])
def test_a_dataset_whose_audio_was_not_moved_has_none(tmp_path: Path, offset, applied) -> None:
    ds = _dataset(tmp_path / "ds", offset, applied)
    assert len(ds.soundless) == 0
    scored, left_out = scored_held_out(ds)
    np.testing.assert_array_equal(scored, [N - 2, N - 1])
    assert len(left_out) == 0 and "left_out" not in held_out_record(ds, scored, left_out)


def test_eval_leaves_the_soundless_held_out_frames_out_and_says_so(tmp_path: Path) -> None:
    ds = _dataset(tmp_path / "ds", 1)
    scored, left_out = scored_held_out(ds)
    np.testing.assert_array_equal(scored, [N - 2])
    np.testing.assert_array_equal(left_out, [N - 1])
    rec = held_out_record(ds, scored, left_out)
    assert rec["frames"] == 1 and rec["img_ids"] == [N - 2, N - 2]
    assert rec["left_out"]["img_ids"] == [N - 1] and "1 frames" in rec["left_out"]["why"]
    with pytest.raises(InvalidInput, match="nothing to score"):
        scored_held_out(_dataset(tmp_path / "all", 2))


def test_training_skips_its_soundless_frames(tmp_path: Path) -> None:
    ds = _dataset(tmp_path / "ds", -2)
    data = training_data(ds, features=None, progress=False)
    assert data.train_idx.tolist() == list(range(2, N - 2))
    assert data.val_idx.tolist() == [N - 2, N - 1]


def test_a_broken_prepare_json_is_one_clear_error(tmp_path: Path) -> None:
    ds = _dataset(tmp_path / "ds", None)
    (ds.root / "prepare.json").write_text("{not json")
    with pytest.raises(InvalidInput, match="prepare.json is not valid JSON"):
        load_dataset(ds.root)
