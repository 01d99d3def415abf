"""The fast render path: the same NeRF's frames from fewer rays, chosen by default, exact on request."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from services.common.subject_store import LocalSubjectStore
from services.renderer.fast import BlockedField, CachedFrame, FastPathConfig, FastRenderer, PoseCache, fitted_occupancy
from services.renderer.head_field import HeadCond, HeadField, HeadFieldConfig
from services.renderer.service import SubjectRenderer

#: every cell subdivided, every lattice ray of a cached pose counted as changed, the training
#: occupancy, float32: the fast path's bookkeeping must then give the full render (up to the
#: torso it skips where it is under 1e-3 or behind a head at least 0.999 opaque)
EVERY_RAY = FastPathConfig(tau=-1.0, change_tau=-1.0, occupancy_scale=1.0, step_scale=1.0, autocast=None)


@pytest.fixture(scope="module")
def demo() -> SubjectRenderer:
    return SubjectRenderer(LocalSubjectStore().load("demo"))


def _small(r: SubjectRenderer, size: int = 64) -> tuple:
    """The demo's camera and background at size x size: cheap full renders for the checks."""
    intr = r.intrinsics.resized(size, size)
    bg = F.interpolate(r.background.permute(2, 0, 1)[None], size=(size, size), mode="area")[0].permute(1, 2, 0)
    return intr, bg.contiguous()


def _codes(n: int, seed: int = 0) -> torch.Tensor:
    # code-sized values (real codes have a spread of about 0.3 per channel)
    return torch.randn(n, 64, generator=torch.Generator().manual_seed(seed)) * 0.3


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def _u8(x: torch.Tensor) -> np.ndarray:
    return (x.clamp(0, 1) * 255).round().to(torch.uint8).numpy()


def test_with_every_ray_cast_the_fast_path_is_the_full_render(demo):
    intr, bg = _small(demo)
    poses, blinks = demo.conditions(3, seed=1, start=40)
    c2w = torch.as_tensor(poses)
    cond = HeadCond(_codes(3), torch.as_tensor(blinks))
    fast = FastRenderer(demo.model, intr, bg, EVERY_RAY)
    with torch.no_grad():
        full = demo.model.render_frames(c2w, intr, cond, background=bg)["image"].clamp(0, 1)
    cold = fast.render(c2w, cond)
    assert fast.rays >= 3 * 64 * 64
    torch.testing.assert_close(cold, full, atol=1e-3, rtol=0)
    # a cached pose with another code: its changed cells re-rendered, blended into the cached frame
    keys = [b"pose"] * 3
    fast.render(c2w[:1].expand(3, 4, 4).contiguous(), HeadCond(_codes(3, 2), cond.eye), keys)
    cond2 = HeadCond(_codes(3, 3), cond.eye)
    warm = fast.render(c2w[:1].expand(3, 4, 4).contiguous(), cond2, keys)
    with torch.no_grad():
        ref = demo.model.render_frames(c2w[:1].expand(3, 4, 4), intr, cond2, background=bg)["image"].clamp(0, 1)
    assert fast.cache.hits >= 1
    torch.testing.assert_close(warm, ref, atol=0.5 / 255 + 1e-3, rtol=0)  # the cached frame is kept as uint8


def test_fast_path_matches_the_full_render_and_casts_fewer_rays(demo):
    intr, bg = _small(demo, 128)
    poses, blinks = demo.conditions(4, seed=3, start=300)
    c2w, cond = torch.as_tensor(poses), HeadCond(_codes(4, 5), torch.as_tensor(blinks))
    fast = FastRenderer(demo.model, intr, bg)
    with torch.no_grad():
        full = _u8(demo.model.render_frames(c2w, intr, cond, background=bg)["image"])
    got = _u8(fast.render(c2w, cond))
    assert min(_psnr(a, b) for a, b in zip(full, got)) >= 38
    assert fast.rays < 0.5 * 4 * 128 * 128


def test_a_still_pose_rerenders_only_what_the_code_changes(demo):
    intr, bg = _small(demo, 128)
    poses, blinks = demo.conditions(8, static_pose=True, seed=0)
    blinks[5] = 1.0  # a closed eye on one frame
    c2w, cond = torch.as_tensor(poses), HeadCond(_codes(8, 7), torch.as_tensor(blinks))
    fast = FastRenderer(demo.model, intr, bg)
    with torch.no_grad():
        full = _u8(demo.model.render_frames(c2w, intr, cond, background=bg)["image"])
    got = _u8(fast.render(c2w, cond, [poses[0].tobytes()] * 8))
    assert len(fast.cache) == 1 and fast.cache.misses == 1
    assert min(_psnr(a, b) for a, b in zip(full, got)) >= 38
    rays_first = fast.rays
    fast.render(c2w, cond, [poses[0].tobytes()] * 8)  # every frame now starts from the cached one
    assert fast.rays - rays_first < 0.25 * 8 * 128 * 128


def test_subject_renderer_uses_the_fast_path_by_default_and_exact_bypasses_it(demo):
    codes = _codes(2, 11).numpy()
    poses, blinks = demo.conditions(2, seed=2, start=900)
    assert demo.fast is not None
    rays = demo.fast.rays
    exact = np.concatenate(list(demo.render(codes, poses, blinks, exact=True)))
    assert demo.fast.rays == rays  # nothing went through the fast path
    with torch.no_grad():
        cond = HeadCond(torch.as_tensor(codes), torch.as_tensor(blinks))
        full = demo.model.render_frames(torch.as_tensor(poses), demo.intrinsics, cond, background=demo.background)
    assert np.array_equal(exact, _u8(full["image"]))
    fast = np.concatenate(list(demo.render(codes, poses, blinks)))
    assert demo.fast.rays > rays and not np.array_equal(fast, exact)
    assert min(_psnr(a, b) for a, b in zip(exact, fast)) >= 38
    assert SubjectRenderer(LocalSubjectStore().load("demo"), fast_path=None).fast is None


@pytest.mark.slow
def test_fast_path_psnr_on_a_spoken_sentence(demo, tts):
    """Real codes: the demo's own audio encoder on a TTS sentence, frames spread over it."""
    from services.common.audio import to_analysis_rate
    from services.encoder.service import EncoderService, subject_audio_encoder

    speech = tts.synthesize("The quick brown fox jumps over the lazy dog and runs home.")
    codes = EncoderService().encode(to_analysis_rate(speech.audio), subject_audio_encoder(LocalSubjectStore().load("demo")),
                                    demo.fps, lang="en").codes
    pick = np.linspace(0, len(codes) - 1, 8).astype(int)
    poses, blinks = demo.conditions(len(codes), seed=0, start=0)
    exact = np.concatenate(list(demo.render(codes[pick], poses[pick], blinks[pick], exact=True)))
    fast = np.concatenate(list(demo.render(codes[pick], poses[pick], blinks[pick])))
    assert min(_psnr(a, b) for a, b in zip(exact, fast)) >= 38


def test_pose_cache_is_bounded_in_bytes_and_drops_the_oldest():
    item = lambda v: CachedFrame(torch.full((8, 8, 3), v, dtype=torch.uint8), torch.zeros(2, 2, dtype=torch.bool))
    size = item(0).nbytes
    cache = PoseCache(3 * size)
    for k in range(5):
        cache.put(bytes([k]), item(k))
        assert cache.nbytes <= 3 * size
    assert len(cache) == 3 and cache.get(bytes([0])) is None and cache.get(bytes([1])) is None
    assert cache.get(bytes([2])) is not None  # now the most recent
    cache.put(bytes([5]), item(5))
    assert cache.get(bytes([3])) is None and cache.get(bytes([2])) is not None
    assert (cache.hits, cache.misses) == (2, 3)
    PoseCache(size - 1).put(b"x", item(0))  # too big for the bound: not held


def test_fitted_occupancy_keeps_the_dense_core_and_leaves_the_grid_alone(demo):
    occ = demo.model.occupancy
    before = occ.mask.clone()
    fitted = fitted_occupancy(occ, FastPathConfig().occupancy_scale)
    assert torch.equal(occ.mask, before)
    assert bool((fitted.mask <= occ.mask).all()) and 0 < fitted.mask.sum() < occ.mask.sum()
    assert torch.equal(fitted_occupancy(occ, 1.0).mask, occ.mask)
    # checked on a pose: kept where it renders like the training grid, dropped where it cannot
    pose = torch.as_tensor(demo.pose_track[0])
    assert torch.equal(FastRenderer(demo.model, demo.intrinsics, demo.background, check_pose=pose).occupancy.mask,
                       fitted.mask)
    assert demo.fast.occupancy.mask.sum() == fitted.mask.sum()  # what the subject renderer chose
    far = FastRenderer(demo.model, demo.intrinsics, demo.background, FastPathConfig(occupancy_scale=1e4), check_pose=pose)
    assert far.occupancy is occ


def test_lean_head_condition_leaves_out_the_attention_maps():
    head = HeadField(HeadFieldConfig(num_levels=4, base_resolution=16, desired_resolution=64, log2_hashmap_size=10,
                                     audio_dim=8, num_latents=2))
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(400, 3, generator=gen) * 2 - 1
    d = F.normalize(torch.randn(400, 3, generator=gen), dim=-1)
    cond = HeadCond(torch.randn(3, 8, generator=gen), torch.rand(3, generator=gen))
    lean = replace(cond, lean=True)
    frame = torch.randint(0, 3, (400,), generator=gen)
    with torch.no_grad():
        a, b = head(x, d, cond, frame), head(x, d, lean, frame)
    assert set(b) == {"sigma", "rgb"} and {"ambient_aud", "ambient_eye"} <= set(a)
    assert torch.equal(a["sigma"], b["sigma"]) and torch.equal(a["rgb"], b["rgb"])
    assert "ambient_aud" in head(x, d, lean, frame)  # with autograd on, the training outputs stay


def test_blocked_field_gives_the_same_samples_through_a_few_gemm_shapes():
    head = HeadField(HeadFieldConfig(num_levels=4, base_resolution=16, desired_resolution=64, log2_hashmap_size=10,
                                     audio_dim=8))
    seen: set[int] = set()

    class Counting:
        def __call__(self, x, d, cond, frame):
            seen.add(x.shape[0])
            return head(x, d, cond, frame)

        def density(self, x, cond, frame):
            seen.add(x.shape[0])
            return head.density(x, cond, frame)

    blocked = BlockedField(Counting(), 64)
    gen = torch.Generator().manual_seed(0)
    cond = HeadCond(torch.randn(2, 8, generator=gen), torch.rand(2, generator=gen), lean=True)
    for n in (0, 1, 9, 64, 65, 200):
        x = torch.rand(n, 3, generator=gen) * 2 - 1
        d = F.normalize(torch.randn(n, 3, generator=gen), dim=-1)
        frame = torch.randint(0, 2, (n,), generator=gen)
        with torch.no_grad():
            want, got = head(x, d, cond, frame), blocked(x, d, cond, frame)
            assert torch.equal(blocked.density(x, cond, frame), head.density(x, cond, frame))
        assert set(got) == set(want)
        for k in want:
            torch.testing.assert_close(got[k], want[k], rtol=1e-5, atol=1e-6)
    assert seen - {0} <= set(range(8, 65, 8))  # bounded: oneDNN caches a primitive per shape


def test_frames_split_across_intra_op_threads_are_the_same_frames(demo):
    intr, bg = _small(demo, 96)
    poses, blinks = demo.conditions(5, seed=4, start=700)
    c2w, cond = torch.as_tensor(poses), HeadCond(_codes(5, 13), torch.as_tensor(blinks))
    fast = FastRenderer(demo.model, intr, bg)
    keys = [p.tobytes() for p in poses[:3]] * 2
    one = _u8(fast.render(c2w, cond))
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        two = _u8(fast.render(c2w, cond))
        fast.render(c2w[[0, 1, 2, 0, 1]], cond, keys[:5])  # cold and cached frames in parts, in order
        warm = _u8(fast.render(c2w[[0, 1, 2, 0, 1]], cond, keys[:5]))
    finally:
        torch.set_num_threads(before)
    assert fast._pool is not None and np.abs(one.astype(int) - two.astype(int)).max() <= 1
    with torch.no_grad():
        full = _u8(demo.model.render_frames(c2w[[0, 1, 2, 0, 1]], intr, cond, background=bg)["image"])
    assert min(_psnr(a, b) for a, b in zip(full, warm)) >= 38
