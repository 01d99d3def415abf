"""Every CUDA check in one call, one JSON (`bench/gpu.sh`, `talking-head bench --stage gpu`).

Devices are lent by chance and briefly, so a lent one must be measured in a single short run:
the GPU-marked tests, the render bench at 512², the real-time bench when it exists, and one
timed training step of the paper-sized NeRF (`gpu` preset, 65 536 rays) and of the paper-sized
ZipEnhancer. Without a GPU the same code runs its CPU fallbacks at small sizes (`quick`), so
CI proves the script works before any device is lent.
"""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from services.bench.common import header, peak_rss_mb

ROOT = Path(__file__).resolve().parents[2]


def _device(name: str | None) -> torch.device:
    return torch.device(name or ("cuda" if torch.cuda.is_available() else "cpu"))


def _sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def _timed_steps(step: Callable[[], None], dev: torch.device, steps: int) -> dict[str, float]:
    """Median and best seconds per step after one warm-up step."""
    step()
    _sync(dev)
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        step()
        _sync(dev)
        times.append(time.perf_counter() - t0)
    times.sort()
    return {"median_s": times[len(times) // 2], "best_s": times[0], "steps": steps}


def gpu_tests(timeout_s: float) -> dict[str, Any]:
    """The GPU-marked tests (skipped, not failed, without a device)."""
    cmd = [sys.executable, "-m", "pytest", "-q", "-m", "gpu", "-p", "no:cacheprovider", "tests/unit"]
    try:
        done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        return {"ok": False, "error": f"timed out after {timeout_s:g} s"}
    tail = (done.stdout or "").strip().splitlines()[-1:] or [""]
    counts = {k: int(n) for n, k in re.findall(r"(\d+) (passed|failed|skipped|deselected|errors?)", tail[0])}
    return {"ok": done.returncode in (0, 5), "returncode": done.returncode, "summary": tail[0], **counts}


def nerf_train_step(dev: torch.device, quick: bool) -> dict[str, Any]:
    """One joint step of the `gpu` preset's head (rays per step as the preset says on a GPU)."""
    from services.bench.render import INTRINSICS_512, cameras, head_occupancy
    from services.renderer.head_field import HeadCond
    from services.training.presets import preset

    recipe = preset("gpu")
    rays = 4096 if quick else recipe.train.rays
    model = recipe.build_model().to(dev).train()
    head_occupancy(model)  # a head-sized occupied region, as after the first occupancy updates
    params = [p for group in model.param_groups("head").values() for p in group]
    opt = torch.optim.Adam(params, lr=1e-3)
    intr = INTRINSICS_512
    gen = torch.Generator().manual_seed(0)
    c2w = cameras(1, dev)
    flat = torch.randint(0, 512 * 512, (rays,), generator=gen).to(dev)
    cond = HeadCond(torch.randn(1, model.head.config.audio_dim, generator=gen),
                    torch.rand(1, generator=gen)).to(dev)
    target = torch.rand(rays, 3, generator=gen).to(dev)

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        out = model.render_pixels(c2w, intr, flat, cond, use_torso=False)
        (out["image"] - target).square().mean().backward()
        opt.step()
        samples.append(float(out["samples"].float().mean()))

    samples: list[float] = []
    timing = _timed_steps(step, dev, 2 if quick else 5)
    return {"rays": rays, "samples_per_ray": samples[-1], **timing}


def zipenhancer_train_step(dev: torch.device, quick: bool) -> dict[str, Any]:
    """One step of the paper-sized ZipEnhancer on 2 s mixtures (batch 4; quick: 1 × 0.5 s)."""
    from services.denoise.losses import enhancement_loss
    from services.denoise.zipenhancer import PAPER, ZipEnhancer

    batch, seconds = (1, 0.5) if quick else (4, 2.0)
    model = ZipEnhancer(PAPER).to(dev).train()
    opt = torch.optim.AdamW(model.parameters(), lr=5e-4)
    gen = torch.Generator().manual_seed(0)
    n = int(seconds * 16_000)
    clean = (0.1 * torch.randn(batch, n, generator=gen)).to(dev)
    noisy = clean + (0.05 * torch.randn(batch, n, generator=gen)).to(dev)

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        loss, _ = enhancement_loss(model, noisy, clean)
        loss.backward()
        opt.step()

    return {"batch": batch, "seconds": seconds, **_timed_steps(step, dev, 1 if quick else 3)}


def _section(result: dict[str, Any], name: str, fn: Callable[[], Any]) -> None:
    """Run one check; a failure is recorded, not fatal, so one broken part costs no device time."""
    t0 = time.perf_counter()
    try:
        result[name] = fn()
    except Exception as exc:  # noqa: BLE001 - the report says what failed
        result[name] = {"error": f"{type(exc).__name__}: {exc}"}
    result.setdefault("wall_s", {})[name] = round(time.perf_counter() - t0, 2)


def run(json_path: str | None = None, quick: bool = False, device: str | None = None,
        tests: bool = True) -> dict[str, Any]:
    dev = _device(device)
    quick = quick or dev.type != "cuda"  # CPU fallbacks at small sizes
    result = header("gpu")
    result.update({"device": str(dev), "quick": quick, "torch": torch.__version__,
                   "cuda": torch.cuda.get_device_name(dev) if dev.type == "cuda" else None})
    if tests:
        _section(result, "gpu_tests", lambda: gpu_tests(240.0))
    from services.bench import render

    _section(result, "render", lambda: render.run(quick=quick, device=str(dev)))
    if importlib.util.find_spec("services.bench.realtime") is not None:
        from services.bench import realtime

        _section(result, "realtime", lambda: realtime.run(quick=quick))
    else:
        result["realtime"] = {"skipped": "services.bench.realtime is not in this build"}
    _section(result, "nerf_train_step", lambda: nerf_train_step(dev, quick))
    _section(result, "zipenhancer_train_step", lambda: zipenhancer_train_step(dev, quick))
    result["peak_rss_mb"] = peak_rss_mb()
    result["ok"] = not any(isinstance(v, dict) and ("error" in v or v.get("ok") is False) for v in result.values())
    if json_path:
        Path(json_path).parent.mkdir(parents=True, exist_ok=True)
        Path(json_path).write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
    return result


def main(argv: list[str] | None = None) -> int:
    import argparse

    p = argparse.ArgumentParser(prog="python -m services.bench.gpu", description=__doc__.splitlines()[0])
    p.add_argument("--json", default="out/gpu.json", help="where to write the result (default out/gpu.json)")
    p.add_argument("--quick", action="store_true", help="small sizes even on a GPU (a smoke run)")
    p.add_argument("--no-tests", action="store_true", help="skip the GPU-marked tests")
    args = p.parse_args(argv)
    result = run(args.json, quick=args.quick, tests=not args.no_tests)
    print(json.dumps({k: result[k] for k in ("device", "quick", "ok", "wall_s")}, indent=1))
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
