"""Encoder benchmark: real-time factor on 2 threads and the content model's held-out PER.

RTF = processing seconds / audio seconds (lower is faster), measured per stage (mel
windows, content posteriors, full encode with a CSFM and with a dynamic-only audio encoder) on
held-out TTS sentences. PER = phone error rate of the bundled content model's greedy
CTC decoding against the TTS phone labels, per language.
"""

from __future__ import annotations

import json
import time

import numpy as np
import torch

from services.bench.common import header, peak_rss_mb
from services.common.audio import to_analysis_rate
from services.common.sentences import random_sentences
from services.encoder.features import extract_features
from services.encoder.service import EncoderService, random_audio_encoder
from services.encoder.units import ctc_greedy, phone_error_rate, speech_labels


def _timed(fn) -> tuple[object, float]:
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def run(json_path: str | None = None, quick: bool = False) -> dict:
    from services.tts.service import TtsService

    torch.set_num_threads(2)
    tts, svc = TtsService(), EncoderService()
    result = header("encoder")
    _, load_s = _timed(lambda: svc.content_model)
    result["content_model_load_s"] = round(load_s, 3)
    model = svc.content_model
    encoders = {"csfm": random_audio_encoder("csfm", model.dim), "dynamic": random_audio_encoder("dynamic")}
    n_per = 4 if quick else 40
    result["content_model"] = {"name": model.name, "units": model.dim,
                               "params_m": round(sum(p.numel() for p in model.model.parameters()) / 1e6, 3)}
    for lang in ("en", "zh"):
        speeches = [tts.synthesize(t, lang) for t in random_sentences(n_per, lang, seed=99, split="heldout")]
        clips = [to_analysis_rate(s.audio) for s in speeches]
        audio_s = sum(c.duration for c in clips)
        pairs, t_mel, t_content, t_enc = [], 0.0, 0.0, {k: 0.0 for k in encoders}
        with torch.no_grad():
            for speech, clip in zip(speeches, clips):
                _, dt = _timed(lambda: extract_features(clip))
                t_mel += dt
                frames, dt = _timed(lambda: model.frames(clip, lang))
                t_content += dt
                pairs.append((speech_labels(speech), ctc_greedy(np.argmax(frames.values, 1).tolist(), model.units)))
                for name, enc in encoders.items():
                    _, dt = _timed(lambda: svc.encode(clip, enc, lang=lang))
                    t_enc[name] += dt
        result[lang] = {
            "sentences": n_per, "audio_s": round(audio_s, 2),
            "per": round(phone_error_rate(pairs), 4),
            "rtf_mel_windows": round(t_mel / audio_s, 4),
            "rtf_content_posteriors": round(t_content / audio_s, 4),
            **{f"rtf_encode_{k}": round(v / audio_s, 4) for k, v in t_enc.items()},
        }
    result["torch_threads"] = torch.get_num_threads()
    result["peak_rss_mb"] = round(peak_rss_mb(), 1)
    if json_path:
        with open(json_path, "w") as f:
            json.dump(result, f, indent=2)
    return result
