"""Score denoiser weights on a dev set: held-out sentences and noise drawn with another seed
than the benchmark's, so that choosing between checkpoints never looks at the benchmark.

    .venv/bin/python bench/denoise_dev.py runs/denoise/ftA/export [--model zipenhancer-small]
    .venv/bin/python bench/denoise_dev.py --model rnnoise          # a baseline on the same set

Prints SI-SDR, PESQ-wb and STOI means, and SI-SDR per noise kind and per input SNR (JSON).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from services.bench.denoise import SR, heldout_speech, mixtures, score
from services.common.types import AudioClip
from services.denoise.service import DEFAULT_MODEL, WEIGHTS_DIR, DenoiseService

DEV_SEED = 777


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("weights", nargs="?", type=Path, default=WEIGHTS_DIR,
                   help="directory holding <model>.safetensors/.json (default: the bundled weights)")
    p.add_argument("--model", default=DEFAULT_MODEL)
    p.add_argument("--en", type=int, default=2, help="English dev sentences")
    p.add_argument("--zh", type=int, default=1, help="Mandarin dev sentences")
    args = p.parse_args()
    if args.en + args.zh < 2:
        p.error("need at least 2 sentences: each one's babble noise is made of the others")
    torch.set_num_threads(1)
    items = mixtures(heldout_speech(args.en, args.zh, seed=DEV_SEED), seed=DEV_SEED)
    svc = DenoiseService(weights_dir=args.weights)
    result = score(items, [svc.enhance(AudioClip(m["noisy"], SR), args.model).samples for m in items])
    out = {k: v for k, v in result["metrics"].items() if k in ("si_sdr", "pesq_wb", "stoi")}
    out["mixtures"] = len(items)
    out.update({group: {k: v["si_sdr"] for k, v in result[group].items()} for group in ("by_snr", "by_kind")})
    print(json.dumps(out))


if __name__ == "__main__":
    main()
