"""Audio-encoder fusion ablation (DAMC Table 3 style) on the oracle demo dataset.

Each run trains one subject with one fusion variant on the same dataset and schedule,
then scores it with `talking-head eval` on held-out sentences in English and Mandarin.
Runs are independent processes, so two can share a 2-core machine (one thread each):

    .venv/bin/python bench/encoder_ablation.py train --variant csfm --scale 0.5 --out out/ablation
    .venv/bin/python bench/encoder_ablation.py table --out out/ablation     # markdown table

Subjects go to OUT/home (a private $TALKING_HEAD_HOME), results to OUT/<variant>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

VARIANTS = ("dynamic", "content", "concat", "cross", "csfm")


def held_out_texts(n_per_lang: int = 8, seed: int = 23) -> list[str]:
    from services.common.sentences import random_sentences

    return random_sentences(n_per_lang, "en", seed=seed, split="heldout") + \
        random_sentences(n_per_lang, "zh", seed=seed, split="heldout")


def train(args: argparse.Namespace) -> int:
    out = Path(args.out)
    os.environ["TALKING_HEAD_HOME"] = str(out / "home")
    import torch

    torch.set_num_threads(args.threads)
    from services.common.subject_store import LocalSubjectStore
    from services.gateway.stages import LocalStages
    from services.training.evaluation import evaluate_oracle
    from services.training.subject import train_subject

    name = f"abl-{args.variant}"
    t0 = time.perf_counter()
    bundle = train_subject(args.dataset, name, preset=args.preset, workdir=out / "runs" / name,
                           iterations_scale=args.scale, encoder=args.variant, content_space=args.content_space)
    LocalSubjectStore().save(bundle)
    train_s = time.perf_counter() - t0
    result = evaluate_oracle(LocalStages(), name, held_out_texts(args.texts_per_lang))
    result.update(variant=args.variant, preset=args.preset, scale=args.scale, content_space=args.content_space,
                  wall_train_seconds=round(train_s, 1),
                  training=bundle.manifest["training"])
    (out / f"{args.variant}.json").write_text(json.dumps(result, indent=1))
    print(json.dumps({k: result[k] for k in ("variant", "psnr", "lmd", "mouth_corr", "by_lang")}))
    return 0


def table(args: argparse.Namespace) -> int:
    out = Path(args.out)
    rows = ["| variant | mouth_corr en | mouth_corr zh | mouth_corr all | lmd en (px) | lmd zh (px) | psnr (dB) |",
            "|---|---|---|---|---|---|---|"]
    for v in VARIANTS:
        path = out / f"{v}.json"
        if not path.is_file():
            continue
        r = json.loads(path.read_text())
        en, zh = r["by_lang"].get("en", {}), r["by_lang"].get("zh", {})
        cells = [en.get("mouth_corr"), zh.get("mouth_corr"), r["mouth_corr"], en.get("lmd"), zh.get("lmd"), r["psnr"]]
        rows.append(f"| {v} | " + " | ".join("–" if c is None else f"{c:.3f}" for c in cells) + " |")
    print("\n".join(rows))
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("train", help="train one variant and evaluate it")
    t.add_argument("--variant", choices=VARIANTS, required=True)
    t.add_argument("--dataset", default=str(Path.home() / ".cache/talking-head/datasets/demo"))
    t.add_argument("--preset", default="cpu")
    t.add_argument("--scale", type=float, default=0.5, help="iterations scale of the preset's stages")
    t.add_argument("--content-space", choices=("units", "phones"), default="phones",
                   help="content posteriors over the model's units, or pinyin projected onto shared phones")
    t.add_argument("--threads", type=int, default=2)
    t.add_argument("--texts-per-lang", type=int, default=8)
    t.add_argument("--out", default="out/ablation")
    t.set_defaults(func=train)
    tb = sub.add_parser("table", help="markdown table of the finished runs")
    tb.add_argument("--out", default="out/ablation")
    tb.set_defaults(func=table)
    args = p.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
