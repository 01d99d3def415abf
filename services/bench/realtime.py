"""Real-time rendering benchmark: the fast render path against the full render on a trained subject.

`run()` is what `OMP_NUM_THREADS=2 talking-head bench --stage realtime --json PATH` calls. The
bundled demo subject says a 4-6 s sentence (Piper TTS, its own audio encoder), its pose track
replayed as `say` replays it, and every frame is rendered twice: through the full render
(`exact=True`, every ray) and through the fast path (the default), batch by batch in turns,
so both see the same machine load. Reported: frames per second of each and their ratio
(comparable across machines and loads; the absolute fps only with the load it was measured
under), the fast path's PSNR against the full render (min and mean over the frames), and the
fast path on a still pose (every frame after the first starts from the cached one). The
moving head is measured three times: on poses the renderer has never seen (its pose cache emptied
first, the bundle's baked poses off), on the same poses again through the fast path alone (its cache emptied again; no full
render between its batches, as `say` and the server run it), and on the same poses with other
codes, as every later request that replays the
same stretch of the track renders them (the pose cache, kept on disk by
services.renderer.pose_file, outlives the process).

Then the whole chain, in this process with everything loaded: the encode RTF of each
sentence on the encoder's own thread count and on the caller's (same sentences, in turns),
and `Pipeline.run` of the text into a fragmented-MP4 sink as gRPC `Speak` streams it: with
the pose cache emptied and the baked poses off (`cold`), emptied with them on (`baked`, as a
fresh `say` of the bundled demo starts), then again (`cached`): end-to-end RTF (wall seconds ÷
audio seconds), seconds from the request to the first rendered frames and to the first media
chunk, and each stage's busy seconds (they overlap). With `grpc=True`, the same text streamed
over gRPC `Speak` from `talking-head serve` on loopback (services.bench.grpc_stack, its pose
cache in memory only, no baked poses): one stream on poses the server has not rendered, one again, then 2
concurrent streams.
"""

from __future__ import annotations

import os
import time
from typing import Any

import numpy as np
import torch

from services.bench.common import header, peak_rss_mb
from services.common.threads import intra_op_threads

SENTENCE = "The quick brown fox jumps over the lazy dog, and then it runs back home across the green fields."
#: Two sentences, 8.3 s with the bundled voice: sentence k+1 is spoken while k renders.
TEXT = SENTENCE + " It was a sunny day, and everyone was happy."
QUICK_SENTENCE = "Good morning to you."


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR in dB of two uint8 images (inf when identical)."""
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


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


def fast_alone(renderer: Any, codes: np.ndarray, poses: np.ndarray, blinks: np.ndarray,
               frames_per_batch: int = 8) -> dict[str, Any]:
    """The fast path alone on the frames `compare` rendered (no full render between its
    batches, as `say` and the server run it): fps and CPU seconds per frame."""
    _, wall, cpu = _timed(renderer, codes, poses, blinks, frames_per_batch)
    return {"frames": len(codes), "fast_fps": len(codes) / wall, "fast_cpu_s_per_frame": cpu / len(codes)}


def encode_rtf(stages: Any, info: Any, clips: list[Any], lang: str = "en") -> dict[str, Any]:
    """Encode RTF of `clips` (16 kHz sentences) on the encoder's own thread count and on the
    caller's, in turns (sum of seconds ÷ sum of audio seconds)."""
    svc, enc = stages.encoder, info.opened.audio_encoder
    own = svc.threads
    seconds = {"own": 0.0, "caller": 0.0}

    def timed(clip: Any, count: int | None) -> float:
        svc.threads = count
        t0 = time.perf_counter()
        svc.encode(clip, enc, info.fps, lang)
        return time.perf_counter() - t0

    try:
        for count in (own, None):  # warm-up
            timed(clips[0], count)
        for clip in clips:
            for name, count in (("own", own), ("caller", None)):
                seconds[name] += timed(clip, count)
    finally:
        svc.threads = own
    audio = sum(c.duration for c in clips)
    return {"sentences": len(clips), "audio_seconds": round(audio, 3), "encoder_threads": own,
            "rtf": seconds["own"] / audio, "rtf_caller_threads": seconds["caller"] / audio,
            "caller_threads": torch.get_num_threads()}


def speak(stages: Any, subject: str, text: str, cache: Any = None) -> dict[str, Any]:
    """`Pipeline.run` of `text` into a fragmented-MP4 sink: with the pose cache `cache`
    emptied and its baked poses off (`cold`: poses never rendered), emptied with the baked
    poses on (`baked`: a fresh process), then again (`cached`)."""
    from services.gateway.pipeline import Pipeline
    from services.gateway.request import SpeakRequest
    from services.gateway.sinks import FragmentedMp4Sink

    pipeline = Pipeline(stages)
    out: dict[str, Any] = {}
    baked = cache.baked if cache is not None else None
    for label in ("cold", "baked", "cached"):
        if label == "baked" and baked is None:
            continue
        if label != "cached" and cache is not None:
            cache.clear()
            cache.baked = None if label == "cold" else baked
        sink = FragmentedMp4Sink(lambda chunk: None)
        misses = cache.misses if cache is not None else 0
        c0, t0 = time.process_time(), time.perf_counter()
        res = pipeline.run(SpeakRequest(text=text, subject=subject, lang="en"), sink)
        wall = time.perf_counter() - t0
        out[label] = {"wall_s": wall, "cpu_s": time.process_time() - c0, "audio_s": res.seconds,
                      "rtf": wall / res.seconds, "first_frame_s": res.times.first_frame,
                      "first_chunk_s": res.times.first_chunk, "frames": res.frames, "sentences": res.sentences,
                      "stage_busy_s": res.times.as_dict(),
                      "poses_rendered_whole": cache.misses - misses if cache is not None else None}
    return out


def grpc_streams(subject: str, text: str, streams: tuple[int, ...] = (1, 2),
                 render_threads: int | None = None, baked: bool = False) -> dict[str, Any]:
    """`text` streamed over gRPC `Speak` from a local `talking-head serve` (subjects from the
    local store; `render_threads`: its --render-threads; `baked`: with the bundles' baked
    poses) after one warm-up stream of another text: one stream (poses the server has not
    rendered, unless baked), one again (its poses cached), then each larger count of
    concurrent streams."""
    import tempfile
    from pathlib import Path

    from services.bench.grpc_stack import local_server, speak_streams

    out: dict[str, Any] = {"render_threads": os.cpu_count() if render_threads is None else render_threads,
                           "baked_poses": baked}
    with (tempfile.TemporaryDirectory(prefix="th-realtime-") as work,
          local_server(Path(work) / "serve.log", render_threads=render_threads, baked=baked) as target):
        out["target"] = target
        # the subject loads, the first TTS call; on a still pose, so no pose of the text is cached
        speak_streams(target, subject, QUICK_SENTENCE, 1, static_pose=True)
        for label, n in [("streams_1", 1), ("streams_1_cached", 1)] + [(f"streams_{n}", n) for n in streams if n > 1]:
            runs = speak_streams(target, subject, text, n)
            ok = [r for r in runs if "error" not in r]
            out[label] = {
                "streams": runs,
                "errors": len(runs) - len(ok),
                "first_chunk_s_max": max((r["first_chunk_s"] for r in ok), default=None),
                "rtf_max": max((r["rtf"] for r in ok if r["rtf"] is not None), default=None),
            }
    return out


def run(json_path: str | None = None, quick: bool = False, threads: int | None = None,
        subject: str = "demo", grpc: bool = False) -> dict[str, Any]:
    """Run the benchmark on `threads` intra-op threads (default: this process's, i.e.
    $OMP_NUM_THREADS); write JSON to `json_path` when given. `grpc`: also stream the text
    over gRPC from a local `talking-head serve` (a minute or two to start)."""
    import json

    from services.common.audio import pad_to_frames, to_analysis_rate
    from services.gateway.stages import LocalStages
    from services.renderer.fast import native_bf16

    stages = LocalStages()
    info = stages.subject(subject)
    renderer = info.opened.renderer if info.opened is not None else None
    if renderer is None or getattr(renderer, "fast", None) is None:
        raise RuntimeError(f"subject {subject!r} has no fast render path (an untrained subject?)")
    text = QUICK_SENTENCE if quick else TEXT
    clips = []
    for speech in stages.sentences(text, "en", None):
        padded, _ = pad_to_frames(speech.audio, info.fps)
        clips.append(to_analysis_rate(padded))
    codes = np.concatenate([stages.encode(info, clip, "en") for clip in clips])
    if quick:
        codes = codes[:8]
    n = len(codes)
    poses, blinks = renderer.conditions(n, seed=0, start=0)
    threads = threads or torch.get_num_threads()
    load_before = os.getloadavg()
    with intra_op_threads(threads), torch.inference_mode():
        other, _ = renderer.conditions(2, seed=0, start=len(renderer.pose_track) // 2)  # poses not measured below
        for exact in (True, False):  # warm up both paths
            list(renderer.render(codes[:2], other, blinks[:2], exact=exact))
        baked, renderer.fast.cache.baked = renderer.fast.cache.baked, None  # poses never rendered
        renderer.fast.cache.clear()
        moving = compare(renderer, codes, poses, blinks)
        renderer.fast.cache.clear()
        moving_alone = fast_alone(renderer, codes, poses, blinks)
        moving_cached = compare(renderer, codes[::-1].copy(), poses, blinks)  # other codes, same poses
        still_poses, still_blinks = renderer.conditions(n, static_pose=True, seed=0)
        still = compare(renderer, codes, still_poses, still_blinks)
        encode = encode_rtf(stages, info, clips)
        renderer.fast.cache.baked = baked
        chain = speak(stages, subject, text, renderer.fast.cache)
    streamed = grpc_streams(subject, text, streams=(1, 2)) if grpc else None
    result = {
        **header("realtime"),
        "quick": quick,
        "subject": subject,
        "size": list(renderer.size),
        "threads": threads,
        "bfloat16": native_bf16(),
        "sentence_seconds": n / info.fps,  # the rendered frames' (quick: the first 8)
        "load_avg_before": [round(v, 2) for v in load_before],
        "load_avg_after": [round(v, 2) for v in os.getloadavg()],
        "moving": moving,
        "moving_fast_alone": moving_alone,
        "moving_cached_poses": moving_cached,
        "still_pose": still,
        "text": text,
        "encode": encode,
        "pipeline": chain,
        "peak_rss_mb": peak_rss_mb(),
    }
    if streamed is not None:
        result["grpc"] = streamed
    if json_path:
        with open(json_path, "w") as fh:
            json.dump(result, fh, indent=2, sort_keys=True)
    return result
