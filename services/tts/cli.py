"""`talking-head tts`: text → wav (+ phoneme timings as JSON)."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "tts", help="synthesise speech to a wav file",
        description="Synthesise TEXT with the bundled neural voice (Piper, offline) and write a wav at "
                    "the voice's native rate. English uses espeak phonemes; Mandarin (--lang zh) goes "
                    "through pypinyin, so polyphones follow their context. Prices, numbers, dates, times, "
                    "phone numbers, e-mail addresses, codes and units are read as words; emoji are not read.")
    p.add_argument("text", help="what to say (≤ 5000 characters)")
    p.add_argument("--out", required=True, type=Path, help="output wav path")
    p.add_argument("--lang", default="en", help="en (default) or zh")
    p.add_argument("--voice", default=None, help="voice name (default: the language's default; `joe`)")
    p.add_argument("--length-scale", type=float, default=None, help="> 1 speaks slower (default 1.0)")
    p.add_argument("--alignments", type=Path, default=None,
                   help="also write phoneme (and pinyin syllable) timings to this JSON file")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from services.common.audio import save_wav
    from services.common.types import SynthesisOptions
    from services.tts.service import TtsService

    t0 = time.perf_counter()
    speech = TtsService().synthesize(args.text, lang=args.lang, voice=args.voice,
                                     options=SynthesisOptions(length_scale=args.length_scale))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    save_wav(args.out, speech.audio)
    if args.alignments:
        doc = {
            "text": speech.text, "lang": speech.lang, "voice": speech.voice,
            "sample_rate": speech.audio.sample_rate, "duration_s": speech.audio.duration,
            "phonemes": [{"phoneme": p.phoneme, "start_s": p.start, "end_s": p.end} for p in speech.phonemes],
            "syllables": [{"syllable": p.phoneme, "start_s": p.start, "end_s": p.end} for p in speech.syllables],
        }
        args.alignments.parent.mkdir(parents=True, exist_ok=True)
        args.alignments.write_text(json.dumps(doc, ensure_ascii=False, indent=1))
    took = time.perf_counter() - t0
    print(f"{args.out}  ({speech.audio.duration:.2f} s of audio at {speech.audio.sample_rate} Hz, "
          f"{len(speech.phonemes)} phonemes, {took:.1f} s)")
    return 0
