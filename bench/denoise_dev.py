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

from services.bench.denoise import SR, _breakdown, _mean, heldout_speech, mixtures
from services.common.types import AudioClip
from services.denoise.service import DEFAULT_MODEL, WEIGHTS_DIR, DenoiseService
from services.eval.speech import all_metrics

DEV_SEED = 777


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("weights", nargs="?", type=Path, default=WEIGHTS_DIR,
                   help="directory holding <model>.safetensors/.json (default: the bundled weights)")
    p.add_argument("--model", default=DEFAULT_MODEL)
    p.add_argument("--en", type=int, default=2, help="English dev sentences")
    p.add_argument("--zh", type=int, default=1, help="Mandarin dev sentences")
    args = p.parse_args()
    torch.set_num_threads(1)
    items = mixtures(heldout_speech(args.en, args.zh, seed=DEV_SEED), seed=DEV_SEED)
    svc = DenoiseService(weights_dir=args.weights)
    rows = [all_metrics(m["clean"], svc.enhance(AudioClip(m["noisy"], SR), args.model).samples, SR)
            for m in items]
    parts = _breakdown(rows, items)
    out = {k: v for k, v in _mean(rows).items() if k in ("si_sdr", "pesq_wb", "stoi")}
    out["mixtures"] = len(items)
    out.update({group: {k: v["si_sdr"] for k, v in parts[group].items()} for group in parts})
    print(json.dumps(out))


if __name__ == "__main__":
    main()
