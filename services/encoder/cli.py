"""`talking-head encode IN.wav --out codes.npy [--subject NAME] [--lang en|zh]`."""

from __future__ import annotations

import argparse
import sys

HELP = """\
Encode speech into one 64-d audio code per video frame (frames = fps × duration),
the input of the renderer. Any audio format load_audio reads; resampled to 16 kHz.

The codes come from a subject's trained audio encoder. WITHOUT --subject this command
uses a RANDOMLY INITIALISED (seeded) audio encoder of the chosen --variant: the codes
then have the right shape and timing and follow the audio, but carry no trained
meaning — useful to check timing and plumbing, not to drive a renderer.
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("encode", help="audio → per-frame 64-d audio codes (.npy)", description=HELP,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("input", metavar="IN.wav", help="speech audio file (wav, flac, mp3, m4a, ...)")
    p.add_argument("--out", required=True, metavar="codes.npy", help="output .npy, float32 [frames, 64]")
    p.add_argument("--subject", metavar="NAME",
                   help="use this subject's trained audio encoder (from its bundle)")
    p.add_argument("--lang", choices=["en", "zh"],
                   help="language of the speech; restricts the content posteriors to its units "
                        "(Mandarin → pinyin units). Default: no restriction")
    p.add_argument("--fps", type=float, default=25.0, help="video frame rate (default 25)")
    p.add_argument("--variant", default="csfm", choices=["dynamic", "content", "concat", "cross", "csfm"],
                   help="fusion variant of the random audio encoder used without --subject (default csfm)")
    p.add_argument("--content-model", metavar="DIR",
                   help="local transformers CTC/wav2vec2/HuBERT directory (default: the bundled model)")
    p.set_defaults(func=_encode)


def _encode(args: argparse.Namespace) -> int:
    from pathlib import Path

    import numpy as np

    from services.common.audio import load_audio
    from services.common.errors import InvalidInput
    from services.encoder.content import DEFAULT_CONTENT_MODEL
    from services.common.subject_store import LocalSubjectStore
    from services.encoder.service import EncoderService, random_audio_encoder, subject_audio_encoder

    if not args.out.endswith(".npy"):
        raise InvalidInput(f"--out must be a .npy path, got {args.out}")
    if args.fps <= 0:
        raise InvalidInput(f"--fps must be positive, got {args.fps}")
    clip = load_audio(args.input)
    svc = EncoderService(Path(args.content_model) if args.content_model else DEFAULT_CONTENT_MODEL)
    if args.subject:
        audio_encoder = subject_audio_encoder(LocalSubjectStore().load(args.subject))
    else:
        dim = svc.content_dim if args.variant != "dynamic" else 0
        audio_encoder = random_audio_encoder(args.variant, dim)
        print("encode: no --subject: using a random-init audio encoder (codes carry no trained meaning)",
              file=sys.stderr)
    out = svc.encode(clip, audio_encoder, fps=args.fps, lang=args.lang)
    np.save(args.out, out.codes.astype(np.float32))
    print(f"{args.out}: {out.n_frames} frames × {out.codes.shape[1]} at {out.fps:g} fps "
          f"({out.duration:.2f} s of audio)")
    return 0
