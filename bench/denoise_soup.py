"""Average denoiser checkpoints of one config into a new weights dir (a uniform "model soup").

    .venv/bin/python bench/denoise_soup.py OUT_DIR STEM [STEM ...]
    .venv/bin/python bench/denoise_dev.py OUT_DIR       # then score it on the dev set

STEM is a model stem such as services/denoise/weights/zipenhancer-small or runs/denoise/ftC/best.
Averaging only makes sense for checkpoints that descend from one training run.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from services.denoise.checkpoint import load_model, save_model


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("out", type=Path, help="directory to write zipenhancer-small.safetensors/.json into")
    p.add_argument("stems", nargs="+", type=Path)
    p.add_argument("--name", default="zipenhancer-small", help="model name the service will load it as")
    args = p.parse_args()
    models = [load_model(stem) for stem in args.stems]
    if any(m.cfg != models[0].cfg for m in models):
        p.error("the checkpoints have different configs")
    states = [m.state_dict() for m in models]
    soup = {k: torch.stack([s[k].float() for s in states]).mean(0).to(v.dtype) if v.is_floating_point() else v
            for k, v in states[0].items()}
    models[0].load_state_dict(soup)
    save_model(args.out / args.name, models[0], {"soup": [str(s) for s in args.stems]})
    print(f"{args.out / args.name}: mean of {len(models)} checkpoints")


if __name__ == "__main__":
    main()
