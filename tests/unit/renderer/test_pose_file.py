"""The pose cache on disk: a second process starts from the frames the first one rendered."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from services.common.subject_store import LocalSubjectStore
from services.renderer import pose_file
from services.renderer.fast import FastPathConfig
from services.renderer.service import SubjectRenderer, open_renderer


def _codes(n: int, seed: int) -> np.ndarray:
    return (np.random.default_rng(seed).standard_normal((n, 64)) * 0.3).astype(np.float32)


@pytest.fixture(scope="module")
def bundle():
    return LocalSubjectStore().load("demo")


def _render(r: SubjectRenderer, codes, poses, blinks) -> np.ndarray:
    return np.concatenate(list(r.render(codes, poses, blinks, frames_per_batch=4)))


def test_a_second_renderer_reads_the_poses_the_first_wrote(bundle, tmp_path):
    first = SubjectRenderer(bundle, pose_dir=tmp_path)
    assert first.poses is not None and first.poses.loaded == 0
    poses, blinks = first.conditions(4, seed=3, start=2500)  # away from the baked walk
    _render(first, _codes(4, 0), poses, blinks)
    first.poses.flush(wait=True)
    [path] = tmp_path.glob("*.safetensors")
    assert path == first.poses.path and not list(tmp_path.glob(".*.tmp"))

    second = SubjectRenderer(bundle, pose_dir=tmp_path)
    assert second.poses.loaded == 4 and len(second.fast.cache) == 4
    other = _codes(4, 1)
    misses = second.fast.cache.misses
    from_disk = _render(second, other, poses, blinks)
    assert second.fast.cache.misses == misses  # every pose came from the file
    # the same frames as a renderer whose cache the first render filled in memory
    assert np.array_equal(from_disk, _render(first, other, poses, blinks))


def test_a_broken_file_is_a_cache_miss_and_is_rewritten(bundle, tmp_path, caplog):
    probe = SubjectRenderer(bundle, pose_dir=tmp_path)
    probe.poses.path.write_bytes(b"not a safetensors file")
    with caplog.at_level(logging.WARNING):
        r = SubjectRenderer(bundle, pose_dir=tmp_path)
    assert r.poses.loaded == 0 and "not used" in caplog.text
    poses, blinks = r.conditions(2, seed=1, start=10)
    _render(r, _codes(2, 2), poses, blinks)
    r.poses.flush(wait=True)
    assert SubjectRenderer(bundle, pose_dir=tmp_path).poses.loaded == 2


def test_another_fast_path_setting_or_subject_uses_another_file(bundle, tmp_path):
    a = SubjectRenderer(bundle, pose_dir=tmp_path)
    b = SubjectRenderer(bundle, pose_dir=tmp_path, fast_path=FastPathConfig(tau=0.2))
    assert a.poses.path != b.poses.path
    assert pose_file.cache_path(tmp_path, "0" * 64, a.fast) != a.poses.path


def test_open_renderer_keeps_poses_under_the_home_cache_unless_turned_off(bundle, tmp_path, monkeypatch):
    monkeypatch.setenv("TALKING_HEAD_HOME", str(tmp_path))
    monkeypatch.setenv(pose_file.ENV, "on")
    r = open_renderer(bundle)
    assert r.poses is not None and r.poses.path.parent == tmp_path / "cache" / "poses"
    monkeypatch.setenv(pose_file.ENV, "off")
    assert open_renderer(bundle).poses is None
