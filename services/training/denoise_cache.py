"""`python -m services.training.denoise_cache`: the denoiser's clean speech cache, spoken by
the training voice mix (`--voices bundled`: the bundled voice alone; voices:
`services.training.speech`, layout and mixtures: `services.denoise.data`)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from services.common.corpus import TEXT_SOURCES
from services.common.errors import TalkingHeadError
from services.denoise.data import DEFAULT_CACHE, build_clean_cache
from services.training.speech import VOICE_SETS, check_voices, speech_source


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Synthesise the clean TTS speech cache for denoiser training.")
    p.add_argument("--out", type=Path, default=DEFAULT_CACHE)
    p.add_argument("--split", choices=["train", "heldout"], default="train")
    p.add_argument("--en", type=int, default=400)
    p.add_argument("--zh", type=int, default=200)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--texts", choices=TEXT_SOURCES, default="natural",
                   help="natural sentences (default) or the old template grammar")
    p.add_argument("--voices", choices=VOICE_SETS, default="mix",
                   help="speakers: the training voice mix (default) or the bundled voice alone")
    a = p.parse_args(argv)
    try:
        check_voices(a.voices)
    except TalkingHeadError as exc:
        p.error(str(exc))
    import torch

    torch.set_num_threads(1)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    speak = speech_source(a.voices, seed=f"denoise-{a.split}-{a.seed}")
    dest = build_clean_cache(speak, a.out, a.split, a.en, a.zh, a.seed, texts=a.texts, voices=a.voices)
    print(f"wrote {dest}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
