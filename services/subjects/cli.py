"""`talking-head subject`: the command group that the subject subcommands join, and
`subject prepare` (a real person's video → dataset)."""

from __future__ import annotations

import argparse
import time
from typing import Any


def register(subparsers: argparse._SubParsersAction) -> argparse._SubParsersAction:
    """Add the `subject` command (top level) and return its subparsers, so the areas that
    make datasets and subjects (synth, train, list, rm, push, pull) add to the same group."""
    subject = subparsers.add_parser(
        "subject", help="make datasets and train, list or remove subjects",
        description="Subjects: ER-NeRF-layout datasets and the trained talking heads made from them.")
    group = subject.add_subparsers(dest="subject_command", metavar="SUBCOMMAND")

    def _usage(args: argparse.Namespace) -> int:
        subject.print_help()
        return 2

    subject.set_defaults(func=_usage)
    p = group.add_parser(
        "prepare", help="make a dataset (ER-NeRF layout) from a real person's talking video",
        description="Turn a video of one person talking to the camera (10 s at least; 1–5 minutes is best; "
                    "mp4/mov/mkv/webm) into a training dataset: FaceMesh landmarks, one fixed square crop "
                    "with head, neck and shoulders, head pose and focal length, parsing, clean background, "
                    "blink track and the 16 kHz speech (moved into sync with the lips when it is clearly off; "
                    "prepare.json says by how much). Writes preview.png into the dataset: look at it "
                    "before training. Needs the `preprocess` extra (MediaPipe).")
    p.add_argument("video", help="the video file")
    p.add_argument("--name", required=True, help="dataset name (directory under $TALKING_HEAD_HOME/datasets)")
    p.add_argument("--size", type=int, default=256, choices=(256, 512), help="square frame size (default 256)")
    p.add_argument("--fps", type=int, default=25, help="frame rate of the dataset (default 25)")
    p.add_argument("--out", help="write the dataset here instead of $TALKING_HEAD_HOME/datasets/NAME")
    p.add_argument("--force", action="store_true", help="replace an existing dataset")
    p.set_defaults(func=_run_prepare)
    return group


def subject_command(groups: dict[str, argparse._SubParsersAction], name: str,
                    **kwargs: Any) -> argparse.ArgumentParser:
    """A new `subject NAME` subcommand, for the areas that extend the group `register` made
    (`groups`: the command groups services.cli collects; `kwargs`: those of `add_parser`)."""
    group = groups.get("subjects")
    if group is None:  # pragma: no cover - subjects' CLI creates the group
        raise RuntimeError("the `subject` command group is missing")
    return group.add_parser(name, **kwargs)


def _run_prepare(args: argparse.Namespace) -> int:
    from services.subjects.prepare import PrepareConfig, prepare

    start = time.perf_counter()
    root = prepare(args.video, args.name, PrepareConfig(size=args.size, fps=args.fps), out=args.out,
                   force=args.force)
    print(f"{root}  ({time.perf_counter() - start:.0f} s; preview: {root / 'preview.png'})")
    return 0
