"""`talking-head subject from-photo PHOTO --name NAME`: one photo → a trained subject."""

from __future__ import annotations

import argparse

from services.subjects.cli import subject_command

#: This module extends the `subject` group that services.subjects.cli creates.
EXTENDS = ("subjects",)


def register(sub: argparse._SubParsersAction, groups: dict[str, argparse._SubParsersAction]) -> None:
    p = subject_command(
        groups, "from-photo", help="make a talking subject from one photo of a face",
        description="One frontal photo of one person (face at least 100 px tall, turned at most 30°) → a "
                    "textured 3D head proxy with an articulated mouth, blinking lids and the background "
                    "inpainted → rendered saying training sentences into a dataset "
                    "($TALKING_HEAD_HOME/datasets/NAME-photo) → trained into a NeRF subject NAME. Needs the "
                    "`preprocess` extra (MediaPipe). Nothing is stored under NAME unless every step succeeds.")
    p.add_argument("photo", help="the photo (jpg, png, webp…)")
    p.add_argument("--name", required=True, help="subject id to store the result as")
    p.add_argument("--size", type=int, default=256, choices=(256, 512), help="square frame size (default 256)")
    p.add_argument("--minutes", type=float, default=2.0, help="minutes of training speech to render (default 2)")
    p.add_argument("--preset", default="cpu", choices=("cpu", "gpu", "tiny"), help="training preset (default cpu)")
    p.add_argument("--scale", type=float, default=1.0, help="multiply every training stage's iterations")
    p.add_argument("--encoder", default="content", metavar="dynamic|content|concat|cross|csfm",
                   help="audio encoder variant (default content: the photo's training speech is clean TTS, "
                        "where the mel path only slows training)")
    p.add_argument("--no-prior", action="store_true",
                   help="start the content encoder from scratch, not from the bundled mouth prior")
    p.add_argument("--seed", type=int, default=0, help="head motion, blinks and sentences (default 0)")
    p.add_argument("--force", action="store_true", help="replace an existing subject and its dataset")
    p.add_argument("--bake-seconds", type=float, default=20.0, metavar="S",
                   help="bake the first S seconds of the default pose walk into the bundle "
                        "(faster first renders; default 20, 0: none)")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from services.common.errors import InvalidInput
    from services.subjects.prepare.landmarks import mediapipe
    from services.training.photo_subject import FromPhotoConfig, from_photo

    if not args.bake_seconds >= 0:
        raise InvalidInput(f"--bake-seconds must be ≥ 0, got {args.bake_seconds:g}")
    mediapipe()  # the preprocess extra: say so before anything else
    config = FromPhotoConfig(size=args.size, minutes=args.minutes, preset=args.preset, seed=args.seed,
                             iterations_scale=args.scale, bake_seconds=args.bake_seconds, encoder=args.encoder,
                             prior=not args.no_prior)
    version, timings = from_photo(args.photo, args.name, config, force=args.force)
    parts = ", ".join(f"{k[:-2]} {v:.0f} s" for k, v in timings.items())
    print(f"{version}  ({parts})")
    return 0
