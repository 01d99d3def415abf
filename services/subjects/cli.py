"""`talking-head subject synth`: the CLI face of the synthetic oracle subject."""

from __future__ import annotations

import argparse
import time

from services.subjects.synth import SynthConfig, synth


def register(subparsers: argparse._SubParsersAction) -> argparse._SubParsersAction:
    """Add the `subject` command (top level) with its `synth` subcommand.

    Returns the `subject` command's subparsers so the other subject subcommands
    (train, list, rm, push, pull) can be added to the same group.
    """
    subject = subparsers.add_parser(
        "subject", help="make datasets and train, list or remove subjects",
        description="Subjects: ER-NeRF-layout datasets and the trained talking heads made from them.")
    group = subject.add_subparsers(dest="subject_command", metavar="SUBCOMMAND")

    def _usage(args: argparse.Namespace) -> int:
        subject.print_help()
        return 2

    subject.set_defaults(func=_usage)
    add_synth(group)
    return group


def add_synth(subparsers: argparse._SubParsersAction) -> None:
    """Add `synth` to the `subject` command's subparsers."""
    p = subparsers.add_parser(
        "synth", help="write a synthetic oracle-subject dataset (ER-NeRF layout)",
        description="Render the procedural oracle head saying random training sentences (mostly English, "
                    "some Mandarin) and write a full ER-NeRF-layout dataset: frames, landmarks, parsing, "
                    "torso layers, background, blink track, 16 kHz audio and camera transforms. The same "
                    "oracle renders exact ground truth for any new text (used by `eval`).")
    p.add_argument("name", help="dataset name (directory under $TALKING_HEAD_HOME/datasets unless --out)")
    p.add_argument("--minutes", type=float, default=3.0, help="minutes of speech to render (default 3)")
    p.add_argument("--size", type=int, default=256, help="square frame size in pixels (default 256)")
    p.add_argument("--seed", type=int, default=0, help="oracle look, motion and sentence seed (default 0)")
    p.add_argument("--fps", type=int, default=25, help="video frame rate (default 25)")
    p.add_argument("--zh-fraction", type=float, default=0.2, help="share of Mandarin sentences (default 0.2)")
    p.add_argument("--out", help="write the dataset here instead of $TALKING_HEAD_HOME/datasets/NAME")
    p.add_argument("--no-video", action="store_true", help="skip writing NAME.mp4 into the dataset")
    p.add_argument("--force", action="store_true", help="replace an existing dataset")
    p.set_defaults(func=_run_synth)


def _run_synth(args: argparse.Namespace) -> int:
    start = time.perf_counter()
    config = SynthConfig(minutes=args.minutes, size=args.size, seed=args.seed, fps=args.fps,
                         zh_fraction=args.zh_fraction, video=not args.no_video)
    root = synth(args.name, config, out=args.out, force=args.force)
    print(f"{root}  ({time.perf_counter() - start:.0f} s)")
    return 0
