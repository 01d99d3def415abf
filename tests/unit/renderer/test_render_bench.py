"""The renderer benchmark runs end to end and reports what the lead's CLI writes."""

from __future__ import annotations

import json
from pathlib import Path

from services.bench.render import run


def test_quick_render_benchmark_writes_json(tmp_path: Path) -> None:
    path = tmp_path / "render.json"
    result = run(str(path), quick=True)
    assert json.loads(path.read_text()) == json.loads(json.dumps(result))
    for key in ("grid_fwd_speedup", "grid_fwdbwd_speedup", "render_fps_256", "render_fps_512", "peak_rss_mb"):
        assert result[key] > 0, key
    assert result["device"].startswith(("cpu", "NVIDIA"))
    # head-shaped scene: some, not all, pixels see the head; not an empty or full grid
    assert 0.02 < result["occupancy"]["occupied_fraction"] < 0.5
    assert 0.05 < result["head_pixel_fraction_256"] < 0.6
    assert 0 < result["samples_per_head_ray_256"] <= 16
