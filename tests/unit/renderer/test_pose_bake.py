"""Baked poses: a bundle carries the fast path's frames of its default pose walk, so a fresh
process renders those poses as cached ones."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch

from services.common.bundle import make_bundle
from services.common.subject_store import LocalSubjectStore
from services.common.types import walk_start
from services.renderer import pose_bake
from services.renderer.fast import FastRenderer
from services.renderer.head_field import HeadCond
from services.renderer.service import SubjectRenderer
from services.training.bundle import bake_bundle


def _codes(n: int, seed: int) -> np.ndarray:
    return (np.random.default_rng(seed).standard_normal((n, 64)) * 0.3).astype(np.float32)


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def _render(r: SubjectRenderer, codes, poses, blinks, exact: bool = False) -> np.ndarray:
    return np.concatenate(list(r.render(codes, poses, blinks, frames_per_batch=4, exact=exact)))


@pytest.fixture(scope="module")
def demo_bundle():
    return LocalSubjectStore().load("demo")


@pytest.fixture(scope="module")
def baked(demo_bundle):
    """The demo again with the first 0.24 s (6 poses) of its walk baked afresh."""
    return bake_bundle(demo_bundle, seconds=0.24)


def test_the_bundled_demo_carries_the_first_20_s_of_its_default_walk(demo_bundle):
    r = SubjectRenderer(demo_bundle)
    assert r.baked is not None and demo_bundle.manifest["baked_poses"]["frames"] == len(r.baked) == 500
    assert len(demo_bundle.blobs[pose_bake.BLOB]) <= pose_bake.DEFAULT_MAX_BYTES
    # what `say` walks: if the walk or the track changes, the demo must be baked again
    # (python scripts/bake_bundled.py demo)
    poses, _ = r.conditions(500, seed=0, start=walk_start(0))
    assert all(pose_bake.pose_key(p) in r.baked._index for p in poses)
    # a frame past the first decoded chunk is its own pose's: the cold render with the bake's zero code
    i = pose_bake.CHUNK + 3
    got = r.baked.get(pose_bake.pose_key(poses[i]))
    c2w = torch.as_tensor(poses[i:i + 1])
    cond = HeadCond(torch.zeros(1, 64), torch.zeros(1), None, lean=True)
    image, reach = r.fast._cold(c2w, cond, torch.zeros(1, dtype=torch.long))
    assert _psnr(got.image.numpy(), (image[0] * 255).round().to(torch.uint8).numpy()) >= 40  # baked on one CPU, rendered on this one
    assert (got.reach == reach[0]).float().mean() > 0.99


def test_a_baked_pose_renders_as_a_cached_one_and_stays_near_the_full_render(baked):
    assert baked.manifest["baked_poses"]["frames"] == 6
    baked.verify()
    r = SubjectRenderer(baked)
    assert r.baked is not None and len(r.baked) == 6
    poses, blinks = r.conditions(6, seed=0, start=walk_start(0))
    codes = _codes(6, 1)
    rays = r.fast.rays
    got = _render(r, codes, poses, blinks)
    assert r.fast.cache.misses == 0 and r.baked.hits == 6
    assert r.fast.rays - rays < 0.5 * 6 * 256 * 256  # only what the code and blink change was cast
    exact = _render(r, codes, poses, blinks, exact=True)
    assert min(_psnr(a, b) for a, b in zip(exact, got)) >= 38
    # the same frames as a renderer that rendered those poses itself first, with the bake's zero code
    own = SubjectRenderer(baked)
    own.fast.cache.baked = None
    _render(own, np.zeros_like(codes), poses, np.zeros_like(blinks))
    assert own.fast.cache.misses == 6
    assert np.array_equal(_render(own, codes, poses, blinks), got)


def test_poses_off_the_baked_walk_are_misses_and_baked_poses_can_be_turned_off(baked, monkeypatch):
    r = SubjectRenderer(baked)
    poses, blinks = r.conditions(2, seed=0, start=3000)
    _render(r, _codes(2, 2), poses, blinks)
    assert r.fast.cache.misses == 2 and r.baked.hits == 0
    monkeypatch.setenv(pose_bake.ENV, "off")
    off = SubjectRenderer(baked)
    assert off.baked is None and off.fast.cache.baked is None


def test_the_bake_stops_at_its_byte_bound(demo_bundle):
    one = bake_bundle(demo_bundle, seconds=0.24, max_bytes=60_000)
    frames = one.manifest["baked_poses"]["frames"]
    assert 1 <= frames < 6
    assert len(SubjectRenderer(one).baked._png) <= 60_000
    with pytest.raises(ValueError, match="smaller than one frame"):
        bake_bundle(demo_bundle, seconds=0.24, max_bytes=100)


def test_baked_frames_of_another_renderer_size_are_ignored_with_a_warning(baked, caplog):
    r = SubjectRenderer(baked)
    small = FastRenderer(r.model, r.intrinsics.resized(64, 64), r.background[::4, ::4].contiguous())
    with caplog.at_level(logging.WARNING):
        assert pose_bake.attach(small, baked.blobs[pose_bake.BLOB], "demo") is None
    assert "baked poses not used" in caplog.text and small.cache.baked is None


def test_subject_bake_cli(demo_bundle, tmp_path, monkeypatch, capsys):
    from services.cli import main

    monkeypatch.setenv("TALKING_HEAD_HOME", str(tmp_path))
    blobs = {k: v for k, v in demo_bundle.blobs.items() if k != pose_bake.BLOB}
    fields = {k: v for k, v in demo_bundle.manifest.items()
              if k not in ("id", "format_version", "created", "blobs", "baked_poses")}
    LocalSubjectStore(tmp_path / "subjects").save(make_bundle("mine", blobs, **fields))
    assert main(["subject", "bake", "mine", "--seconds", "0.12"]) == 0
    stored = LocalSubjectStore(tmp_path / "subjects").load("mine")
    assert stored.manifest["baked_poses"]["frames"] == 3 and pose_bake.BLOB in stored.blobs
    capsys.readouterr()
    assert main(["subject", "bake", "demo"]) == 2
    assert "ships with the package" in capsys.readouterr().err
    assert main(["subject", "bake", "mine", "--seconds", "0"]) == 2
    assert main(["subject", "bake", "nobody"]) == 2
    assert main(["subject", "train", "any", "--name", "x", "--bake-seconds", "-1"]) == 2
    assert main(["subject", "from-photo", "any.png", "--name", "x", "--bake-seconds", "-1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 4 and all(line.startswith("talking-head subject: error:") for line in err)
    torch.set_num_threads(1)  # the CLI may change this process's threads
