"""Renderer benchmark: hash-grid fast path vs reference, frames per second, memory.

`run()` is what `talking-head bench --stage render --json PATH` calls. Ratios are
measured in one run (same machine, same load); absolute speeds come with the device
and thread count they were measured on. The scene is head-shaped: the occupancy grid
holds a head-sized ellipsoid (not an empty or a full grid) seen from a talking-head
camera (transforms.json pose 1 unit in front, focal 1200 px at 512^2).

Two head fields are rendered:
- ``untrained``: the randomly initialised 14-level head; its density is ~1 everywhere,
  so every ray through the head takes all 16 samples (the worst case);
- ``fitted``: the same head after a short fit of its density to the ellipsoid
  (opaque like a trained head), so rays stop early as they do on real subjects.
``render_fps_256`` / ``render_fps_512`` report the worst case.
"""

from __future__ import annotations

import json
import platform
import resource
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from services.renderer.hashgrid import HashGrid
from services.renderer.head_field import HeadCond, HeadField, HeadFieldConfig
from services.renderer.rays import Intrinsics, nerf_matrix_to_ngp
from services.renderer.renderer import TalkingHeadModel

#: Head-sized ellipsoid in renderer space: x up/down, y depth, z left/right.
HEAD_SEMI_AXES = (0.5, 0.4, 0.38)
INTRINSICS_512 = Intrinsics(fx=1200.0, fy=1200.0, cx=256.0, cy=256.0, height=512, width=512)


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _best_time(fn: Callable[[], Any], device: torch.device, repeats: int, warmup: bool = True) -> tuple[float, float]:
    """(best wall seconds, process CPU seconds of that run) over `repeats` runs."""
    if warmup:
        fn()
        _sync(device)
    best = (float("inf"), 0.0)
    for _ in range(repeats):
        c0, t0 = time.process_time(), time.perf_counter()
        fn()
        _sync(device)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        if wall < best[0]:
            best = (wall, cpu)
    return best


def head_occupancy(model: TalkingHeadModel) -> None:
    """Fill the model's occupancy grid with the head-sized ellipsoid."""
    occ = model.occupancy
    centres = occ.cell_centers()
    semi = torch.tensor(HEAD_SEMI_AXES, device=centres.device)
    inside = ((centres / semi) ** 2).sum(-1) <= 1
    occ.set_density(torch.where(inside, 100.0, 0.0))


def cameras(n: int, device: torch.device) -> torch.Tensor:
    """n transforms.json-style poses 1 unit in front of the face, slightly moving."""
    poses = torch.eye(4).repeat(n, 1, 1)
    for i in range(n):
        a = 0.05 * i
        poses[i, :3, :3] = torch.tensor(
            [[1.0, 0.0, 0.0], [0.0, torch.cos(torch.tensor(a)), -torch.sin(torch.tensor(a))], [0.0, torch.sin(torch.tensor(a)), torch.cos(torch.tensor(a))]]
        )
        poses[i, :3, 3] = poses[i, :3, :3] @ torch.tensor([0.0, 0.0, 1.0])
    return nerf_matrix_to_ngp(poses).to(device)


def fit_head_density(head: HeadField, steps: int, device: torch.device, seed: int = 0) -> float:
    """Fit the head's density to the ellipsoid (log sigma 5 inside, -5 outside) for any
    audio code: a stand-in for a trained, opaque head. Returns the final loss."""
    gen = torch.Generator(device="cpu").manual_seed(seed)
    semi = torch.tensor(HEAD_SEMI_AXES)
    opt = torch.optim.Adam(
        [
            {"params": head.encoder.parameters(), "lr": 1e-2},
            {"params": [p for n, p in head.named_parameters() if not n.startswith("encoder")], "lr": 3e-3},
        ]
    )
    loss = torch.tensor(0.0)
    for _ in range(steps):
        x = torch.rand(8192, 3, generator=gen) * 2 - 1
        x[:, 1] *= 0.5
        target = torch.where(((x / semi) ** 2).sum(-1) <= 1, 5.0, -5.0)
        cond = HeadCond(audio=torch.randn(4, head.config.audio_dim, generator=gen), eye=torch.rand(4, generator=gen))
        frame = torch.randint(0, 4, (x.shape[0],), generator=gen)
        cond, x, target, frame = cond.to(device), x.to(device), target.to(device), frame.to(device)
        sigma = head.density(x, cond, frame)
        loss = torch.nn.functional.smooth_l1_loss(torch.log(sigma.clamp(min=1e-6)), target)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return float(loss.detach())


def bench_grid(device: torch.device, n: int, repeats: int) -> dict[str, float]:
    """Tri-plane head encoder (3 planes x 14 levels): reference vs the automatic fast path."""
    cfg = HeadFieldConfig()
    fast = HeadField(cfg).encoder.to(device)
    ref = HeadField(HeadFieldConfig(grid_backend="reference")).encoder.to(device)
    ref.load_state_dict(fast.state_dict())
    gen = torch.Generator().manual_seed(0)
    x = (torch.rand(n, 3, generator=gen) * 2 - 1).to(device)
    grid0 = fast.grids[0]
    backend = grid0.resolve_backend(x) if isinstance(grid0, HashGrid) else "tiny-cuda-nn"

    def fwd(enc: torch.nn.Module) -> Callable[[], Any]:
        def run() -> None:
            with torch.no_grad():
                enc(x)

        return run

    def fwdbwd(enc: torch.nn.Module) -> Callable[[], Any]:
        def run() -> None:
            enc.zero_grad(set_to_none=True)
            enc(x).square().sum().backward()

        return run

    # interleave reference and fast runs so a change in machine load hits both alike
    t_ref_f = t_fast_f = t_ref_b = t_fast_b = float("inf")
    for i in range(repeats):
        warm = i == 0
        t_ref_f = min(t_ref_f, _best_time(fwd(ref), device, 1, warm)[0])
        t_fast_f = min(t_fast_f, _best_time(fwd(fast), device, 1, warm)[0])
        t_ref_b = min(t_ref_b, _best_time(fwdbwd(ref), device, 1, warm)[0])
        t_fast_b = min(t_fast_b, _best_time(fwdbwd(fast), device, 1, warm)[0])
    return {
        "grid_backend": backend,
        "grid_points": n,
        "grid_fwd_speedup": t_ref_f / t_fast_f,
        "grid_fwdbwd_speedup": t_ref_b / t_fast_b,
        "grid_fwd_msamples_per_s": n / t_fast_f / 1e6,
        "grid_fwdbwd_msamples_per_s": n / t_fast_b / 1e6,
        "grid_ref_fwd_msamples_per_s": n / t_ref_f / 1e6,
        "grid_ref_fwdbwd_msamples_per_s": n / t_ref_b / 1e6,
    }


def bench_render(
    model: TalkingHeadModel, size: int, frames: int, device: torch.device, repeats: int, warmup: bool = True
) -> dict[str, float]:
    intr = INTRINSICS_512.resized(size, size)
    c2w = cameras(frames, device)
    gen = torch.Generator().manual_seed(size)
    cond = HeadCond(audio=torch.randn(frames, model.head.config.audio_dim, generator=gen), eye=torch.rand(frames, generator=gen)).to(device)
    bg = torch.rand(size, size, 3, generator=gen).to(device)
    out: dict[str, torch.Tensor] = {}

    def render() -> None:
        nonlocal out
        with torch.inference_mode():
            out = model.render_frames(c2w, intr, cond, background=bg)

    wall, cpu = _best_time(render, device, repeats, warmup)
    samples = out["samples"].float()
    hit = samples > 0
    return {
        "fps": frames / wall,
        "cpu_s_per_frame": cpu / frames,
        "head_pixel_fraction": float(hit.float().mean()),
        "samples_per_head_ray": float(samples[hit].mean()) if bool(hit.any()) else 0.0,
    }


def run(json_path: str | None = None, quick: bool = False, device: str | None = None) -> dict[str, Any]:
    """Run the renderer benchmark; write JSON to `json_path` when given."""
    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    torch.manual_seed(0)
    repeats = 1 if quick else 3
    frames = 1 if quick else 4
    model = TalkingHeadModel().to(dev).eval()
    head_occupancy(model)
    result: dict[str, Any] = {
        "stage": "render",
        "device": torch.cuda.get_device_name(dev) if dev.type == "cuda" else f"cpu ({_cpu_name()})",
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "quick": quick,
        "frames_per_call": frames,
        "occupancy": {"shape": "ellipsoid", "semi_axes": list(HEAD_SEMI_AXES), "occupied_fraction": model.occupancy.occupied_fraction()},
    }
    sizes = (256, 512)
    for size in sizes:
        r = bench_render(model, size, frames, dev, repeats, warmup=not quick)
        result[f"render_fps_{size}"] = r["fps"]
        result[f"render_cpu_s_per_frame_{size}"] = r["cpu_s_per_frame"]
        result[f"samples_per_head_ray_{size}"] = r["samples_per_head_ray"]
        result[f"head_pixel_fraction_{size}"] = r["head_pixel_fraction"]
    result["peak_rss_mb"] = _peak_rss_mb()  # after the 512^2 frames, before the grid tests
    if dev.type == "cuda":
        result["peak_gpu_mb"] = torch.cuda.max_memory_allocated(dev) / 2**20
    if not quick:
        t0 = time.perf_counter()
        result["fitted_density_loss"] = fit_head_density(model.head, 150, dev)
        result["fit_seconds"] = time.perf_counter() - t0
        for size in sizes:
            r = bench_render(model, size, frames, dev, repeats)
            result[f"render_fps_{size}_fitted"] = r["fps"]
            result[f"samples_per_head_ray_{size}_fitted"] = r["samples_per_head_ray"]
    result.update(bench_grid(dev, 20_000 if quick else 200_000, 2 if quick else 5))
    result["peak_rss_total_mb"] = _peak_rss_mb()
    if json_path:
        Path(json_path).write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":  # pragma: no cover - manual runs
    import sys

    paths = [a for a in sys.argv[1:] if not a.startswith("--")]
    print(json.dumps(run(paths[0] if paths else None, quick="--quick" in sys.argv), indent=2))
