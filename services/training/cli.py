"""`talking-head subject train` and `talking-head eval`."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

#: This module extends the `subject` group that services.subjects.cli creates.
EXTENDS = ("subjects",)


def register(sub: argparse._SubParsersAction, groups: dict[str, argparse._SubParsersAction]) -> None:
    ev = sub.add_parser(
        "eval", help="quality of a subject against the oracle's ground truth",
        description="Render each line of --texts with the subject (trained on the synthetic oracle) using the "
                    "oracle's own camera and blinks, and compare with the oracle's exact frames: psnr, bg_psnr "
                    "(background pixels only: floaters), ssim, lmd (mouth opening distance, px) and mouth_corr, "
                    "per text and averaged. Lines with hanzi are spoken in Mandarin. The speech is seeded: "
                    "every run scores the same audio.")
    ev.add_argument("--subject", default="demo", help="subject id (default demo)")
    ev.add_argument("--texts", default="natural", metavar="FILE|natural|templates",
                    help="a file with one sentence per line, or a built-in held-out set of 8 sentences "
                         "(6 en + 2 zh): natural (default; sources never trained on) or templates (the "
                         "old template grammar's held-out split)")
    ev.add_argument("--json", type=Path, default=None, help="write the full result here")
    ev.set_defaults(func=_eval)

    group = groups.get("subjects")
    if group is None:  # pragma: no cover - subjects' CLI creates the group
        raise RuntimeError("the `subject` command group is missing")
    t = group.add_parser(
        "train", help="train a subject from an ER-NeRF-layout dataset",
        description="Jointly train the audio encoder and the tri-plane NeRF (head, lips, torso stages) on "
                    "DATASET and store the subject bundle. Resumes from the run directory when interrupted.")
    t.add_argument("dataset", help="dataset directory, or a name under $TALKING_HEAD_HOME/datasets")
    t.add_argument("--name", required=True, help="subject id to store the result as")
    # the names of services.training.presets.PRESET_NAMES, spelled out so `--help` needs no torch
    t.add_argument("--preset", default="cpu", choices=("cpu", "gpu", "tiny"),
                   help="cpu: a 2-core laptop in ≤ 90 min; gpu: paper-sized (512²); tiny: a smoke run")
    t.add_argument("--run-dir", type=Path, default=None,
                   help="checkpoints, curve and summary (default $TALKING_HEAD_HOME/runs/NAME)")
    t.add_argument("--fresh", action="store_true", help="ignore an existing checkpoint in the run directory")
    t.add_argument("--scale", type=float, default=1.0, help="multiply every stage's iterations (e.g. 0.5)")
    t.add_argument("--encoder", default=None, metavar="dynamic|content|concat|cross|csfm",
                   help="audio encoder fusion variant (default: the preset's); all but `dynamic` run the "
                        "bundled content model over the dataset's audio first")
    t.set_defaults(func=_train)


def _eval(args: argparse.Namespace) -> int:
    from services.common.corpus import TEXT_SOURCES, sentences
    from services.common.errors import InvalidInput
    from services.gateway.stages import LocalStages
    from services.training.evaluation import evaluate_oracle

    if args.texts in TEXT_SOURCES:
        texts = sentences(6, "en", seed=11, split="heldout", source=args.texts) + \
            sentences(2, "zh", seed=11, split="heldout", source=args.texts)
    elif not Path(args.texts).is_file():
        raise InvalidInput(f"texts file not found: {args.texts} (or name a built-in set: {', '.join(TEXT_SOURCES)})")
    else:
        texts = Path(args.texts).read_text(encoding="utf-8").splitlines()
    import onnxruntime

    onnxruntime.set_seed(11)  # Piper draws its prosody noise in onnxruntime: same speech every run
    result = evaluate_oracle(LocalStages(), args.subject, texts)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=1, ensure_ascii=False) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != "per_text"}, indent=1, ensure_ascii=False))
    return 0


def _dataset_path(value: str) -> Path:
    from services.common.paths import datasets_dir

    p = Path(value)
    return p if p.exists() or "/" in value else datasets_dir() / value


def _train(args: argparse.Namespace) -> int:
    from services.common.bundle import check_subject_id
    from services.common.paths import home
    from services.common.subject_store import LocalSubjectStore
    from services.training.subject import train_subject

    check_subject_id(args.name)
    run_dir = args.run_dir or home() / "runs" / args.name
    bundle = train_subject(_dataset_path(args.dataset), args.name, preset=args.preset, workdir=run_dir,
                           resume=not args.fresh, iterations_scale=args.scale, encoder=args.encoder)
    path = LocalSubjectStore().save(bundle)
    tr = bundle.manifest["training"]
    print(f"{path}  (val PSNR {tr['val_psnr']} dB, {tr['train_seconds'] / 60:.1f} min; curve: "
          f"{run_dir / 'training_curve.png'})")
    return 0
