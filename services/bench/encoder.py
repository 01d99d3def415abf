"""Encoder benchmark: real-time factor on 2 threads and the content model's phone error rate.

RTF = processing seconds / audio seconds (lower is faster), measured per stage (mel
windows, content posteriors, full encode with a CSFM and with a dynamic-only audio encoder) on
held-out TTS sentences of the chosen text source. PER = phone error rate of the bundled
content model's greedy CTC decoding against the TTS phone labels, per language, on:
- held-out sentences of both text sources spoken by the TTS (`per_by_text_source`: the
  templates, which the model was trained on the grammar of, and natural sentences);
- real human speech with transcripts (`real_speech`: LJ Speech and VoiceBank clips from
  ../shared/data/real, skipped when absent), against the TTS front end's phonemisation of
  the transcript (services/bench/phonetics.py).
"""

from __future__ import annotations

import json
import time

import numpy as np
import torch

from services.bench.common import header, peak_rss_mb
from services.common.audio import to_analysis_rate
from services.bench import real_data
from services.bench.phonetics import transcript_labels
from services.common.corpus import TEXT_SOURCES, sentences
from services.encoder.features import extract_features
from services.encoder.service import EncoderService, random_audio_encoder
from services.encoder.units import ctc_greedy, phone_error_rate, speech_labels


def _timed(fn) -> tuple[object, float]:
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def greedy_units(model, clip, lang: str) -> list[str]:
    """The content model's greedy CTC decoding of a 16 kHz clip, restricted to `lang`'s units."""
    with torch.no_grad():
        frames = model.frames(clip, lang)
    return ctc_greedy(np.argmax(frames.values, 1).tolist(), model.units)


def tts_per(model, tts, texts: list[str], lang: str) -> float:
    """PER of the content model on `texts` spoken by the TTS, against its phone labels."""
    pairs = []
    for text in texts:
        speech = tts.synthesize(text, lang)
        pairs.append((speech_labels(speech), greedy_units(model, to_analysis_rate(speech.audio), lang)))
    return round(phone_error_rate(pairs), 4)


def real_speech_per(model, tts, utterances: list[real_data.RealUtterance]) -> dict:
    """PER of the content model on real recordings against their transcripts' phonemisation."""
    pairs, per_clip = [], {}
    for utt in utterances:
        pair = (transcript_labels(tts, utt.text, utt.lang), greedy_units(model, utt.audio, utt.lang))
        pairs.append(pair)
        per_clip[utt.id] = round(phone_error_rate([pair]), 4)
    lj = [p for u, p in zip(utterances, pairs) if u.id.startswith("LJ")]
    return {"per": round(phone_error_rate(pairs), 4), "per_lj_speech": round(phone_error_rate(lj), 4),
            "clips": len(utterances), "audio_s": round(sum(u.audio.duration for u in utterances), 2),
            "per_clip": per_clip}


def run(json_path: str | None = None, quick: bool = False, texts: str = "natural",
        n_per: int | None = None, threads: int = 2) -> dict:
    """`n_per` sentences per language and text source (default 40, 4 with `quick`)."""
    from services.tts.service import TtsService

    torch.set_num_threads(threads)
    tts, svc = TtsService(), EncoderService()
    result = header("encoder")
    _, load_s = _timed(lambda: svc.content_model)
    result["content_model_load_s"] = round(load_s, 3)
    model = svc.content_model
    encoders = {"csfm": random_audio_encoder("csfm", model.dim), "dynamic": random_audio_encoder("dynamic")}
    n_per = n_per or (4 if quick else 40)
    result["content_model"] = {"name": model.name, "units": model.dim,
                               "params_m": round(sum(p.numel() for p in model.model.parameters()) / 1e6, 3)}
    result["text_source"] = texts
    for lang in ("en", "zh"):
        speeches = [tts.synthesize(t, lang) for t in sentences(n_per, lang, seed=99, split="heldout", source=texts)]
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
    result["per_by_text_source"] = {
        src: {lang: (result[lang]["per"] if src == texts else
                     tts_per(model, tts, sentences(n_per, lang, seed=99, split="heldout", source=src), lang))
              for lang in ("en", "zh")}
        for src in TEXT_SOURCES}
    result["real_speech"] = (real_speech_per(model, tts, real_data.speech()) if real_data.available()
                             else real_data.SKIPPED)
    result["torch_threads"] = torch.get_num_threads()
    result["peak_rss_mb"] = round(peak_rss_mb(), 1)
    if json_path:
        with open(json_path, "w") as f:
            json.dump(result, f, indent=2)
    return result
