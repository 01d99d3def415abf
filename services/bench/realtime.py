"""Real-time rendering benchmark: the fast render path against the full render on a trained subject.

`run()` is what `OMP_NUM_THREADS=2 talking-head bench --stage realtime --json PATH` calls. The
bundled demo subject says a 4-6 s sentence (Piper TTS, its own audio encoder), its pose track
replayed as `say` replays it, and every frame is rendered twice: through the full render
(`exact=True`, every ray) and through the fast path (the default), batch by batch in turns,
so both see the same machine load. Reported: frames per second of each and their ratio
(comparable across machines and loads; the absolute fps only with the load it was measured
under), the fast path's PSNR against the full render (min and mean over the frames), and the
fast path on a still pose (every frame after the first starts from the cached one).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch

from services.bench.common import header, peak_rss_mb

SENTENCE = "The quick brown fox jumps over the lazy dog, and then it runs back home across the green fields."
QUICK_SENTENCE = "Good morning to you."


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR in dB of two uint8 images (inf when identical)."""
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


@contextmanager
def _threads(n: int) -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _timed(renderer: Any, *args: Any, **kwargs: Any) -> tuple[np.ndarray, float, float]:
    """All frames of one `renderer.render(*args, **kwargs)`, its wall and CPU seconds."""
    c0, t0 = time.process_time(), time.perf_counter()
    frames = np.concatenate(list(renderer.render(*args, **kwargs)))
    return frames, time.perf_counter() - t0, time.process_time() - c0


def compare(renderer: Any, codes: np.ndarray, poses: np.ndarray, blinks: np.ndarray,
            frames_per_batch: int = 8) -> dict[str, Any]:
    """Render every batch exactly and through the fast path, in turns: fps, CPU seconds per
    frame and per-frame PSNR of the fast path against the full render."""
    wall = {"full": 0.0, "fast": 0.0}
    cpu = {"full": 0.0, "fast": 0.0}
    scores: list[float] = []
    rays0 = renderer.fast.rays
    for s in range(0, len(codes), frames_per_batch):
        part = slice(s, s + frames_per_batch)
        batch = (codes[part], poses[part], blinks[part], frames_per_batch)
        exact, w, c = _timed(renderer, *batch, exact=True)
        wall["full"], cpu["full"] = wall["full"] + w, cpu["full"] + c
        fast, w, c = _timed(renderer, *batch)
        wall["fast"], cpu["fast"] = wall["fast"] + w, cpu["fast"] + c
        scores += [psnr(a, b) for a, b in zip(exact, fast)]
    n = len(codes)
    h, w_ = renderer.size
    return {
        "frames": n,
        "full_fps": n / wall["full"],
        "fast_fps": n / wall["fast"],
        "fast_over_full": wall["full"] / wall["fast"],
        "full_cpu_s_per_frame": cpu["full"] / n,
        "fast_cpu_s_per_frame": cpu["fast"] / n,
        "psnr_min_db": min(scores),
        "psnr_mean_db": float(np.mean(scores)),
        "fast_rays_per_pixel": (renderer.fast.rays - rays0) / (n * h * w_),
    }


def run(json_path: str | None = None, quick: bool = False, threads: int | None = None,
        subject: str = "demo") -> dict[str, Any]:
    """Run the benchmark on `threads` intra-op threads (default: this process's, i.e.
    $OMP_NUM_THREADS); write JSON to `json_path` when given."""
    import json

    from services.common.audio import pad_to_frames, to_analysis_rate
    from services.gateway.stages import LocalStages
    from services.renderer.fast import native_bf16

    stages = LocalStages()
    info = stages.subject(subject)
    renderer = info.opened.renderer if info.opened is not None else None
    if renderer is None or getattr(renderer, "fast", None) is None:
        raise RuntimeError(f"subject {subject!r} has no fast render path (an untrained subject?)")
    text = QUICK_SENTENCE if quick else SENTENCE
    codes = []
    for speech in stages.sentences(text, "en", None):
        padded, _ = pad_to_frames(speech.audio, info.fps)
        codes.append(stages.encode(info, to_analysis_rate(padded), "en"))
    codes = np.concatenate(codes)
    if quick:
        codes = codes[:8]
    n = len(codes)
    poses, blinks = renderer.conditions(n, seed=0, start=0)
    threads = threads or torch.get_num_threads()
    load_before = os.getloadavg()
    with _threads(threads), torch.inference_mode():
        other, _ = renderer.conditions(2, seed=0, start=len(renderer.pose_track) // 2)  # poses not measured below
        for exact in (True, False):  # warm up both paths
            list(renderer.render(codes[:2], other, blinks[:2], exact=exact))
        moving = compare(renderer, codes, poses, blinks)
        still_poses, still_blinks = renderer.conditions(n, static_pose=True, seed=0)
        still = compare(renderer, codes, still_poses, still_blinks)
    result = {
        **header("realtime"),
        "quick": quick,
        "subject": subject,
        "size": list(renderer.size),
        "threads": threads,
        "bfloat16": native_bf16(),
        "sentence_seconds": n / info.fps,
        "load_avg_before": [round(v, 2) for v in load_before],
        "load_avg_after": [round(v, 2) for v in os.getloadavg()],
        "moving": moving,
        "still_pose": still,
        "peak_rss_mb": peak_rss_mb(),
    }
    if json_path:
        with open(json_path, "w") as fh:
            json.dump(result, fh, indent=2, sort_keys=True)
    return result
