"""TTS benchmark: real-time factor, first-sentence latency, peak RSS (English and Mandarin)."""

from __future__ import annotations

import json
import time

from services.bench.common import header, peak_rss_mb
from services.common.corpus import sentences
from services.tts.service import TtsService


def run(json_path: str | None = None, quick: bool = False, texts: str = "natural") -> dict:
    svc = TtsService()
    t0 = time.perf_counter()
    svc.backend("en")
    load_s = time.perf_counter() - t0
    svc.synthesize("Warm up.", "en")
    result = header("tts")
    result["voice_load_s"] = round(load_s, 3)
    result["text_source"] = texts
    n = 3 if quick else 12
    for lang in ("en", "zh"):
        text = " ".join(sentences(n, lang, seed=7, split="heldout", source=texts))
        t0 = time.perf_counter()
        first = None
        audio_s = 0.0
        for i, speech in enumerate(svc.sentences(text, lang)):
            if i == 0:
                first = time.perf_counter() - t0
            audio_s += speech.audio.duration
        total = time.perf_counter() - t0
        result[lang] = {"sentences": n, "audio_s": round(audio_s, 2), "synth_s": round(total, 3),
                        "real_time_factor": round(total / audio_s, 4),
                        "first_sentence_latency_s": round(first or 0.0, 3)}
    result["peak_rss_mb"] = round(peak_rss_mb(), 1)
    if json_path:
        with open(json_path, "w") as f:
            json.dump(result, f, indent=2)
    return result
