"""The real-time render benchmark runs end to end on the demo subject and reports both paths."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from services.bench.realtime import run


@pytest.mark.slow
def test_quick_realtime_benchmark_writes_json(tmp_path: Path) -> None:
    path = tmp_path / "realtime.json"
    result = run(str(path), quick=True, threads=1)
    assert json.loads(path.read_text()) == json.loads(json.dumps(result))
    assert result["size"] == [256, 256] and result["threads"] == 1 and len(result["load_avg_before"]) == 3
    for part in ("moving", "moving_cached_poses", "still_pose"):
        r = result[part]
        assert r["frames"] == 8 and r["full_fps"] > 0 and r["fast_fps"] > 0
        assert r["fast_over_full"] == pytest.approx(r["fast_fps"] / r["full_fps"])
        assert r["psnr_min_db"] >= 38 and r["psnr_mean_db"] >= r["psnr_min_db"]
        assert 0 < r["fast_rays_per_pixel"] < 1
    assert result["still_pose"]["fast_rays_per_pixel"] < result["moving"]["fast_rays_per_pixel"]
    assert result["moving_cached_poses"]["fast_rays_per_pixel"] < result["moving"]["fast_rays_per_pixel"]
    alone = result["moving_fast_alone"]
    assert alone["frames"] == 8 and alone["fast_fps"] > 0 and alone["fast_cpu_s_per_frame"] > 0
    enc = result["encode"]
    assert enc["encoder_threads"] == 1 and enc["rtf"] > 0 and enc["rtf_caller_threads"] > 0
    chains = result["pipeline"]
    for chain in chains.values():
        assert 0 < chain["first_frame_s"] <= chain["first_chunk_s"] < chain["wall_s"] and chain["rtf"] > 0
        assert chain["frames"] > 0
    # the demo's baked walk covers the text's poses; the cold run renders each whole
    assert chains["cold"]["poses_rendered_whole"] == chains["cold"]["frames"]
    assert chains["baked"]["poses_rendered_whole"] == chains["cached"]["poses_rendered_whole"] == 0
    assert result["peak_rss_mb"] > 0 and "grpc" not in result
