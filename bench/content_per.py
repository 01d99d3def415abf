"""Phone error rate of several content models on the same speech: held-out TTS sentences of
both text sources (natural, templates) and the real recordings of ../shared/data/real/speech.
The PER part of `talking-head bench --stage encoder`, with every model decoding the very
same audio (each sentence is synthesised once), so old and new weights compare in one run.

    .venv/bin/python bench/content_per.py OLD_DIR NEW_DIR [-n 40] [--json out/content-per.json]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from services.bench import real_data
from services.bench.encoder import greedy_units
from services.bench.phonetics import transcript_labels
from services.common.audio import to_analysis_rate
from services.common.corpus import TEXT_SOURCES, sentences
from services.encoder.content import ContentModel
from services.encoder.units import phone_error_rate, speech_labels


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("models", nargs="+", type=Path, help="content model directories")
    p.add_argument("-n", type=int, default=40, help="held-out sentences per language and text source")
    p.add_argument("--json", type=Path)
    args = p.parse_args()
    torch.set_num_threads(1)
    from services.tts.service import TtsService

    tts = TtsService()
    models = {str(m): ContentModel.load(m) for m in args.models}
    pairs: dict[str, dict[str, list]] = {m: {} for m in models}
    t0 = time.perf_counter()
    for src in TEXT_SOURCES:
        for lang in ("en", "zh"):
            for text in sentences(args.n, lang, seed=99, split="heldout", source=src):
                speech = tts.synthesize(text, lang)
                clip, ref = to_analysis_rate(speech.audio), speech_labels(speech)
                for name, model in models.items():
                    pairs[name].setdefault(f"{src}_{lang}", []).append((ref, greedy_units(model, clip, lang)))
    if real_data.available():
        for utt in real_data.speech():
            ref = transcript_labels(tts, utt.text, utt.lang)
            group = "real_lj_speech" if utt.id.startswith("LJ") else "real_voicebank"
            for name, model in models.items():
                pair = (ref, greedy_units(model, utt.audio, utt.lang))
                pairs[name].setdefault(group, []).append(pair)
                pairs[name].setdefault("real", []).append(pair)
                pairs[name].setdefault("per_clip", []).append((utt.id, round(phone_error_rate([pair]), 4)))
    result = {"sentences_per_set": args.n, "seconds": round(time.perf_counter() - t0, 1), "models": {}}
    for name, groups in pairs.items():
        clips = dict(groups.pop("per_clip", []))
        result["models"][name] = {**{g: round(phone_error_rate(v), 4) for g, v in groups.items()},
                                  "per_clip": clips}
    text = json.dumps(result, indent=2, ensure_ascii=False)
    print(text)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(text)


if __name__ == "__main__":
    main()
