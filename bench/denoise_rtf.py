"""Wall-clock real-time factor of a denoiser on this machine, 1 and 2 torch threads.

    .venv/bin/python bench/denoise_rtf.py [--model zipenhancer-small]

Best of 3 `DenoiseService().enhance` calls on a 10 s clip and a 60 s file (seeded noise: the
network's cost does not depend on what it hears). Run it on idle cores.
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import torch

from services.bench.common import best_of
from services.common.types import AudioClip
from services.denoise.service import DEFAULT_MODEL, DenoiseService


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default=DEFAULT_MODEL)
    args = p.parse_args()
    svc = DenoiseService()
    rng = np.random.default_rng(0)
    out = {}
    for threads in (1, 2):
        torch.set_num_threads(threads)
        for seconds in (10, 60):
            clip = AudioClip((0.1 * rng.standard_normal(seconds * 16000)).astype(np.float32), 16000)
            svc.enhance(clip, args.model)  # warm-up (loads the weights)
            best = best_of(lambda: svc.enhance(clip, args.model), 3)
            out[f"rtf_{seconds}s_{threads}_threads"] = round(best / seconds, 3)
    print(json.dumps({"model": args.model, **out}))


if __name__ == "__main__":
    main()
