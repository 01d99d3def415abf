"""`talking-head subject train` and `talking-head eval`."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from services.subjects.cli import subject_command

#: This module extends the `subject` group that services.subjects.cli creates.
EXTENDS = ("subjects",)


def register(sub: argparse._SubParsersAction, groups: dict[str, argparse._SubParsersAction]) -> None:
    ev = sub.add_parser(
        "eval", help="quality of a subject: against the oracle, or on a real dataset's held-out frames",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Two modes.\n\n"
                    "Oracle (default): render each line of --texts with the subject (trained on the synthetic "
                    "oracle) using the\noracle's own camera and blinks, and compare with the oracle's exact "
                    "frames: psnr, bg_psnr (background\npixels only: floaters), ssim, lmd (mouth opening "
                    "distance, px) and mouth_corr, per text and averaged. Lines\nwith hanzi are spoken in "
                    "Mandarin. The speech is seeded: every run scores the same audio.\n\n"
                    "Dataset (--dataset DIR|NAME): render the held-out frames of the subject's own dataset (the "
                    "last 1/11,\ntransforms_val.json, the ER-NeRF protocol) from those frames' own audio, "
                    "poses and blinks, and compare\nwith the real frames (gt_imgs): psnr, psnr_head (the real frame's "
                    "neck and torso pixels kept:\nER-NeRF's head setting), ssim, lmd (mean px "
                    "at 256² between the FaceMesh mouth landmarks\nof rendered and real frames), lmd_shape "
                    "(the same, mouth centroid removed), mouth_corr (Pearson of the\nFaceMesh inner-lip gap, "
                    "rendered vs real) and face_found, each beside a static baseline (the first\ntraining "
                    "frame repeated) and the goals (psnr >= 30 dB, mouth_corr >= 0.7, lmd >= 30 % below the "
                    "static\nbaseline's). Held-out frames with no sound of their own (where prepare moved the audio to "
                    "sync it) are\nnot scored and are listed (held_out.left_out). Needs the preprocess extra "
                    "(MediaPipe). LPIPS is not\ncomputed: its learned weights ship in no wheel available offline.")
    ev.add_argument("--subject", default="demo", help="subject id (default demo)")
    ev.add_argument("--dataset", default=None, metavar="DIR|NAME",
                    help="score on this dataset's held-out frames (a directory, or a name under "
                         "$TALKING_HEAD_HOME/datasets) instead of the oracle")
    ev.add_argument("--photo", default=None, metavar="PHOTO",
                    help="score a subject made by `subject from-photo` from this photo: identity (neutral frame "
                         "vs the photo over the face, the mouth at the photo's own), mouth_corr against the viseme "
                         "opening (the photo's mouth where the speech rests) on held-out natural sentences, and pose "
                         "robustness (the photo's pose, its mirrored yaw, ±15°); with "
                         "--json X.json also X.png, the frames side by side")
    ev.add_argument("--texts", default=None, metavar="FILE|natural|templates",
                    help="oracle mode: a file with one sentence per line, or a built-in held-out set of 8 "
                         "sentences (6 en + 2 zh): natural (default; sources never trained on) or templates "
                         "(the old template grammar's held-out split)")
    ev.add_argument("--json", type=Path, default=None,
                    help="write the full result here (with per-text or per-frame scores)")
    ev.set_defaults(func=_eval)

    t = subject_command(
        groups, "train", help="train a subject from an ER-NeRF-layout dataset",
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
    t.add_argument("--no-prior", action="store_true",
                   help="start the `content` encoder from scratch, not from the bundled mouth prior (a "
                        "content encoder pretrained on TTS speech; used by default when it fits)")
    t.add_argument("--bake-seconds", type=float, default=20.0, metavar="S",
                   help="bake the fast path's frames of the first S seconds of the default pose walk into the "
                        "bundle, so a fresh process renders them as cached poses (default 20; 0: none)")
    t.set_defaults(func=_train)

    b = subject_command(
        groups, "bake", help="bake a subject's default pose walk into its bundle (faster first renders)",
        description="Render the fast path's frames of the first S seconds of the subject's default pose walk "
                    "(the poses `say` and a default gRPC Speak start with) and store the subject again with "
                    "them inside (poses.safetensors, PNGs, ≤ 18 MB): a fresh process then renders those poses "
                    "as cached ones, only the mouth and eyes re-rendered. `train` bakes by default.")
    b.add_argument("name", help="subject id (one in $TALKING_HEAD_HOME/subjects)")
    b.add_argument("--seconds", type=float, default=20.0, help="length of the baked walk (default 20)")
    b.set_defaults(func=_bake)


def _eval(args: argparse.Namespace) -> int:
    from services.common.corpus import TEXT_SOURCES, sentences
    from services.common.errors import InvalidInput
    from services.gateway.stages import LocalStages
    from services.training.evaluation import evaluate_oracle

    if args.dataset is not None and args.photo is not None:
        raise InvalidInput("--dataset and --photo are two eval modes: give one")
    if args.dataset is not None:
        return _eval_dataset(args)
    if args.photo is not None:
        return _eval_photo(args)
    source = args.texts or "natural"
    if source in TEXT_SOURCES:
        texts = sentences(6, "en", seed=11, split="heldout", source=source) + \
            sentences(2, "zh", seed=11, split="heldout", source=source)
    elif not Path(source).is_file():
        raise InvalidInput(f"texts file not found: {source} (or name a built-in set: {', '.join(TEXT_SOURCES)})")
    else:
        texts = Path(source).read_text(encoding="utf-8").splitlines()
    import onnxruntime

    onnxruntime.set_seed(11)  # Piper draws its prosody noise in onnxruntime: same speech every run
    _report(evaluate_oracle(LocalStages(), args.subject, texts), args.json, "per_text")
    return 0


def _eval_dataset(args: argparse.Namespace) -> int:
    from services.common.errors import InvalidInput
    from services.gateway.stages import LocalStages

    if args.texts is not None:
        raise InvalidInput("--texts is for the oracle eval; --dataset scores the dataset's own held-out frames")
    from services.subjects.prepare.landmarks import mediapipe

    mediapipe()  # the landmark scores need the preprocess extra: say so before rendering anything
    from services.training.dataset_eval import evaluate_dataset

    _report(evaluate_dataset(LocalStages(), args.subject, _dataset_path(args.dataset)), args.json, "per_frame")
    return 0


def _eval_photo(args: argparse.Namespace) -> int:
    from services.common.errors import InvalidInput
    from services.gateway.stages import LocalStages

    texts = None
    if args.texts is not None:
        if not Path(args.texts).is_file():
            raise InvalidInput(f"--photo takes --texts FILE (one sentence per line): {args.texts} is no file")
        texts = Path(args.texts).read_text(encoding="utf-8").splitlines()
    from services.subjects.prepare.landmarks import mediapipe

    mediapipe()
    import onnxruntime

    onnxruntime.set_seed(11)  # the same speech every run
    from services.training.photo_eval import evaluate_photo

    sheet = args.json.with_suffix(".png") if args.json else None
    _report(evaluate_photo(LocalStages(), args.subject, args.photo, texts, sheet=sheet), args.json, "texts")
    return 0


def _report(result: dict, path: Path | None, detail: str) -> None:
    """The full result to `path` (if given); the result without its `detail` list on stdout."""
    if path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(result, indent=1, ensure_ascii=False) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != detail}, indent=1, ensure_ascii=False))


def _dataset_path(value: str) -> Path:
    from services.common.paths import datasets_dir

    p = Path(value)
    return p if p.exists() or "/" in value else datasets_dir() / value


def _train(args: argparse.Namespace) -> int:
    from services.common.bundle import check_subject_id
    from services.common.errors import InvalidInput
    from services.common.paths import home
    from services.common.subject_store import LocalSubjectStore
    from services.training.bundle import bake_with_bar, has_fast_path
    from services.training.subject import train_subject

    if not args.bake_seconds >= 0:
        raise InvalidInput(f"--bake-seconds must be ≥ 0, got {args.bake_seconds:g}")
    check_subject_id(args.name)
    run_dir = args.run_dir or home() / "runs" / args.name
    bundle = train_subject(_dataset_path(args.dataset), args.name, preset=args.preset, workdir=run_dir,
                           resume=not args.fresh, iterations_scale=args.scale, encoder=args.encoder,
                           prior=not args.no_prior)
    if args.bake_seconds > 0 and has_fast_path(bundle):
        bundle = bake_with_bar(bundle, args.bake_seconds)
    elif args.bake_seconds > 0:
        print("poses not baked: the subject has no fitted occupancy grid (no fast path)", flush=True)
    path = LocalSubjectStore().save(bundle)
    tr = bundle.manifest["training"]
    print(f"{path}  (val PSNR {tr['val_psnr']} dB, {tr['train_seconds'] / 60:.1f} min; curve: "
          f"{run_dir / 'training_curve.png'})")
    return 0


def _bake(args: argparse.Namespace) -> int:
    import time

    from services.common.errors import InvalidInput
    from services.common.subject_store import LocalSubjectStore
    from services.training.bundle import bake_with_bar, has_fast_path

    if not args.seconds > 0:
        raise InvalidInput(f"--seconds must be > 0, got {args.seconds:g}")
    store = LocalSubjectStore(bundled=None)
    if store.path(args.name) is None and LocalSubjectStore().path(args.name) is not None:
        raise InvalidInput(f"subject {args.name!r} ships with the package, baked already")
    bundle = store.load(args.name)
    if not has_fast_path(bundle):
        raise InvalidInput(f"subject {args.name!r} has no fitted occupancy grid (no fast path): nothing to bake")
    t0 = time.perf_counter()
    baked = bake_with_bar(bundle, args.seconds)
    path = store.save(baked)
    b = baked.manifest["baked_poses"]
    print(f"{path}  ({b['frames']} poses, {b['seconds']} s of the walk, "
          f"{len(baked.blobs['poses.safetensors']) / 2**20:.1f} MB, {time.perf_counter() - t0:.0f} s)")
    return 0
