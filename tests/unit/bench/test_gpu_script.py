"""bench/gpu.sh runs end to end without a GPU (its CPU fallbacks), so the day a device is lent
one call measures it."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.slow
def test_gpu_script_runs_its_cpu_fallbacks(tmp_path):
    out = tmp_path / "gpu.json"
    env = {**os.environ, "PY": sys.executable, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(["bash", str(ROOT / "bench" / "gpu.sh"), str(out)], env=env, capture_output=True, text=True,
                          timeout=400)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(out.read_text())
    assert result["ok"] and result["gpu_tests"]["ok"] and "failed" not in result["gpu_tests"]
    for part in ("render", "nerf_train_step", "zipenhancer_train_step"):
        assert "error" not in result[part], result[part]
    assert result["nerf_train_step"]["samples_per_ray"] > 0  # the rays hit the head
    assert result["zipenhancer_train_step"]["median_s"] > 0
    if result["device"] == "cpu":
        assert result["quick"] and result["render"]["quick"]
