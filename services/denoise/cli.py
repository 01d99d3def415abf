"""`talking-head denoise IN --out OUT [--model ...]`: speech enhancement of an audio file."""

from __future__ import annotations

import argparse
import time
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    from services.denoise.models import DEFAULT_MODEL, MODELS

    p = sub.add_parser(
        "denoise", help="remove noise from recorded speech",
        description="Enhance speech in an audio file (wav, flac, mp3, m4a, … any rate, mono or stereo) "
                    "and write a wav at the input's own sample rate. Long files are processed in "
                    "overlapping chunks with bounded memory.")
    p.add_argument("input", type=Path, help="input audio file")
    p.add_argument("--out", required=True, type=Path, help="output wav path")
    p.add_argument("--model", default=DEFAULT_MODEL, choices=MODELS,
                   help=f"zipenhancer (paper size, ≈2 M parameters, slow on CPU), zipenhancer-small "
                        f"(CPU real time), rnnoise or spectral (noise gating); default {DEFAULT_MODEL}")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    import torch

    from services.common.audio import load_audio, save_wav
    from services.denoise.service import DenoiseService

    if args.threads:
        torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    svc = DenoiseService()
    clip = load_audio(args.input, svc.max_seconds)
    out = svc.enhance(clip, args.model, progress=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    save_wav(args.out, out)
    took = time.perf_counter() - t0
    print(f"{args.out}  ({out.duration:.2f} s at {out.sample_rate} Hz, model {args.model}, "
          f"{took:.1f} s, real-time factor {took / max(out.duration, 1e-9):.2f})")
    return 0
