"""Does a denoiser leave clean speech alone? SI-SDR and PESQ-wb of clean held-out utterances
(the first N of the held-out speech cache, peak 0.5) through the given weights.

    .venv/bin/python bench/denoise_clean.py [STEM ...]   (default: the bundled small model)

Needs the speech cache (`python -m services.training.denoise_cache`).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from services.denoise.checkpoint import load_model
from services.denoise.data import DEFAULT_CACHE, SpeechCache
from services.denoise.train import WEIGHTS_DIR
from services.eval.speech import pesq_wb, si_sdr


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("stems", nargs="*", type=Path, default=[WEIGHTS_DIR / "zipenhancer-small"])
    p.add_argument("-n", type=int, default=3, help="utterances")
    args = p.parse_args()
    torch.set_num_threads(1)
    cache = SpeechCache.load(DEFAULT_CACHE / "heldout")
    for stem in args.stems:
        model = load_model(stem).eval()
        rows = []
        for x in cache.utterances[:args.n]:
            x = (x / np.abs(x).max() * 0.5).astype(np.float32)
            with torch.inference_mode():
                y = model.enhance(torch.from_numpy(x)[None]).numpy()[0]
            rows.append({"si_sdr": round(si_sdr(x, y), 1), "pesq_wb": round(pesq_wb(x, y, 16000), 2)})
        print(json.dumps({"weights": str(stem), "utterances": rows}))


if __name__ == "__main__":
    main()
