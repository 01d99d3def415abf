"""`talking-head subject synth`: a synthetic oracle-subject dataset spoken by the bundled voice."""

from __future__ import annotations

import argparse
import time

from services.common.corpus import TEXT_SOURCES
from services.subjects.cli import subject_command

#: This module extends the `subject` group that services.subjects.cli creates.
EXTENDS = ("subjects",)


def register(sub: argparse._SubParsersAction, groups: dict[str, argparse._SubParsersAction]) -> None:
    p = subject_command(
        groups, "synth", help="write a synthetic oracle-subject dataset (ER-NeRF layout)",
        description="Render the procedural oracle head saying training sentences (mostly English, "
                    "some Mandarin) and write a full ER-NeRF-layout dataset: frames, landmarks, parsing, "
                    "torso layers, background, blink track, 16 kHz audio and camera transforms. The same "
                    "oracle renders exact ground truth for any new text (used by `eval`).")
    p.add_argument("name", help="dataset name (directory under $TALKING_HEAD_HOME/datasets unless --out)")
    p.add_argument("--minutes", type=float, default=3.0, help="minutes of speech to render (default 3)")
    p.add_argument("--size", type=int, default=256, help="square frame size in pixels (default 256)")
    p.add_argument("--seed", type=int, default=0, help="oracle look, motion and sentence seed (default 0)")
    p.add_argument("--fps", type=int, default=25, help="video frame rate (default 25)")
    p.add_argument("--zh-fraction", type=float, default=0.2, help="share of Mandarin sentences (default 0.2)")
    p.add_argument("--texts", choices=TEXT_SOURCES, default="natural",
                   help="natural sentences from packaged text sources (default) or the old template grammar")
    p.add_argument("--out", help="write the dataset here instead of $TALKING_HEAD_HOME/datasets/NAME")
    p.add_argument("--no-video", action="store_true", help="skip writing NAME.mp4 into the dataset")
    p.add_argument("--force", action="store_true", help="replace an existing dataset")
    p.set_defaults(func=_run_synth)


def _run_synth(args: argparse.Namespace) -> int:
    from services.subjects.synth import SynthConfig, synth
    from services.training.speech import bundled_voice

    start = time.perf_counter()
    config = SynthConfig(minutes=args.minutes, size=args.size, seed=args.seed, fps=args.fps,
                         zh_fraction=args.zh_fraction, video=not args.no_video, texts=args.texts)
    root = synth(args.name, config, out=args.out, force=args.force, speak=bundled_voice())
    print(f"{root}  ({time.perf_counter() - start:.0f} s)")
    return 0
