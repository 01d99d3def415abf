"""Denoise benchmark: ZipEnhancer (both sizes) vs RNNoise vs spectral gating in one run.

Fixed, seeded held-out mixtures, fully crossed (every sentence × every noise kind × 0 and
5 dB SNR): held-out sentences (never in training) spoken by the TTS, mixed with noise —
kinds never used in training (machine, bandnoise), babble made of other held-out
sentences, and training kinds drawn from seeds far from any training stream. Reports every
metric per model (and for the noisy input), per input SNR and noise kind, the real-time
factor and peak RSS.

Real data (`real`, skipped when ../shared/data/real is absent): the VoiceBank-DEMAND test
pair p232_001 (real noisy recording against its clean one), and LJ Speech clips (real
speech, resampled to 16 kHz) mixed with recorded household noise (Speech Commands'
`doing_the_dishes`, `exercise_bike`: a seeded crop per mixture) at 0 and 5 dB, every clip
with every noise at every SNR. No training run has heard any of them.

Real-time factors are measured with one torch thread, as wall time and as this process's
CPU time: on a shared machine the wall figure includes waiting for a core, the CPU figure
is the compute the model needs (one core's worth; two cores halve neither for RNNoise).
"""

from __future__ import annotations

import json
import time

import numpy as np
import torch

from services.bench import real_data
from services.bench.common import best_of, header, peak_rss_mb
from services.common.audio import resample
from services.common.corpus import sentences
from services.common.types import ANALYSIS_SAMPLE_RATE as SR
from services.common.types import AudioClip
from services.denoise import noise as noise_gen
from services.denoise.service import MODELS, DenoiseService
from services.eval.speech import all_metrics

BENCH_KINDS = ("machine", "babble", "bandnoise", "pink", "hum", "clicks", "white")
SNRS = (0.0, 5.0)
SEED = 20_250_105


def heldout_speech(n_en: int, n_zh: int, seed: int = SEED, texts: str = "natural") -> list[np.ndarray]:
    """The same audio in every run: Piper's prosody noise is drawn inside onnxruntime, whose
    random ops take the global seed when a session is created (a fresh one here)."""
    import onnxruntime

    from services.tts.service import TtsService

    onnxruntime.set_seed(seed)
    tts = TtsService()
    jobs = [(t, "en") for t in sentences(n_en, "en", seed=seed, split="heldout", source=texts)]
    jobs += [(t, "zh") for t in sentences(n_zh, "zh", seed=seed, split="heldout", source=texts)]
    out = []
    for text, lang in jobs:
        s = tts.synthesize(text, lang)
        out.append(_peak_half(resample(s.audio.samples, s.audio.sample_rate, SR)))
    return out


def _peak_half(wav: np.ndarray) -> np.ndarray:
    return (wav / np.abs(wav).max() * 0.5).astype(np.float32)


def mixtures(speech: list[np.ndarray], seed: int = SEED) -> list[dict]:
    """(noisy, clean, kind, snr) for every utterance × every noise kind × every SNR.

    Fully crossed, so that the per-kind and per-SNR means compare like with like (a set
    where each kind meets one utterance at one SNR confounds the three). The babble for an
    utterance is made of the other utterances."""
    rng = np.random.default_rng(seed)
    items = []
    for i, clean in enumerate(speech):
        others = speech[:i] + speech[i + 1:]
        for kind in BENCH_KINDS:
            for snr in SNRS:
                noise = noise_gen.generate(kind, len(clean), rng, SR, babble_source=others)
                items.append({"noisy": noise_gen.mix_at_snr(clean, noise, snr), "clean": clean,
                              "kind": kind, "snr": snr})
    return items


def real_noise_mixtures(speech: list[np.ndarray], noises: dict[str, np.ndarray], seed: int = SEED) -> list[dict]:
    """(noisy, clean, kind, snr) for every utterance × every recorded noise × every SNR; each
    mixture takes a seeded crop of the noise recording (looped if shorter than the speech)."""
    rng = np.random.default_rng(seed)
    items = []
    for clean in speech:
        for kind, rec in noises.items():
            for snr in SNRS:
                looped = rec if len(rec) >= len(clean) else np.tile(rec, len(clean) // len(rec) + 1)
                start = int(rng.integers(0, len(looped) - len(clean) + 1))
                noise = looped[start:start + len(clean)]
                items.append({"noisy": noise_gen.mix_at_snr(clean, noise, snr), "clean": clean,
                              "kind": kind, "snr": snr})
    return items


def _enhanced(svc: DenoiseService, name: str, items: list[dict]) -> list[np.ndarray]:
    return [svc.enhance(AudioClip(m["noisy"], SR), name).samples for m in items]


def real_section(svc: DenoiseService, quick: bool = False) -> dict | str:
    """Every model on the real VoiceBank pair and on LJ Speech mixed with recorded noise."""
    if not real_data.available():
        return real_data.SKIPPED
    noisy, clean = real_data.voicebank_pair()
    vb = [{"noisy": noisy, "clean": clean, "kind": "voicebank", "snr": None}]
    speech = [_peak_half(u.audio.samples) for u in real_data.speech(voicebank=False)][: 2 if quick else 6]
    items = real_noise_mixtures(speech, real_data.noises())
    out: dict = {
        "set": {"voicebank": "p232_001 (real noisy / clean pair)", "speech_clips": len(speech),
                "noises": sorted(real_data.noises()), "mixtures": len(items), "snrs_db": list(SNRS),
                "audio_s": round(sum(len(m["noisy"]) for m in items) / SR, 2), "seed": SEED},
        "voicebank": {"noisy": all_metrics(clean, noisy, SR)},
        "real_noise": {"noisy": score(items, [m["noisy"] for m in items])},
        "clean_input": {},  # the same speech with no noise: what a model takes away from a voice
    }
    passthrough = [{"noisy": x, "clean": x} for x in speech]
    for name in MODELS:
        try:
            outs = _enhanced(svc, name, vb + passthrough + items)
        except Exception as exc:  # a missing weight file is reported, not fatal
            out["voicebank"][name] = out["real_noise"][name] = out["clean_input"][name] = {"error": str(exc)}
            continue
        out["voicebank"][name] = all_metrics(clean, outs[0], SR)
        out["clean_input"][name] = _mean([all_metrics(x, y, SR) for x, y in zip(speech, outs[1:1 + len(speech)])])
        out["real_noise"][name] = score(items, outs[1 + len(speech):])
    small, rnn = out["real_noise"].get("zipenhancer-small", {}), out["real_noise"].get("rnnoise", {})
    if "metrics" in small and "metrics" in rnn:
        out["goals"] = {
            "real_noise_small_si_sdr_minus_rnnoise_db": round(small["metrics"]["si_sdr"] - rnn["metrics"]["si_sdr"], 3),
            "real_noise_small_pesq_minus_rnnoise": round(small["metrics"]["pesq_wb"] - rnn["metrics"]["pesq_wb"], 3),
            "voicebank_small_si_sdr_minus_rnnoise_db": round(
                out["voicebank"]["zipenhancer-small"]["si_sdr"] - out["voicebank"]["rnnoise"]["si_sdr"], 3),
        }
    return out


def _best_cpu(fn, repeats: int) -> float:
    """Least CPU time (this process) of `repeats` calls, in seconds."""
    best = float("inf")
    for _ in range(repeats):
        c0 = time.process_time()
        fn()
        best = min(best, time.process_time() - c0)
    return best


def _mean(rows: list[dict]) -> dict:
    return {k: round(float(np.mean([r[k] for r in rows])), 4) for k in rows[0]}


def _breakdown(rows: list[dict], items: list[dict]) -> dict:
    """Means per input SNR and per noise kind (where a model wins or loses)."""
    return {"by_snr": {str(s): _mean([r for r, m in zip(rows, items) if m["snr"] == s]) for s in SNRS},
            "by_kind": {k: _mean([r for r, m in zip(rows, items) if m["kind"] == k])
                        for k in dict.fromkeys(m["kind"] for m in items)}}


def score(items: list[dict], outputs: list[np.ndarray]) -> dict:
    """Every metric of `outputs` against the items' clean speech: means overall
    ("metrics"), per input SNR and per noise kind."""
    rows = [all_metrics(m["clean"], y, SR) for m, y in zip(items, outputs)]
    return {"metrics": _mean(rows), **_breakdown(rows, items)}


def run(json_path: str | None = None, quick: bool = False, texts: str = "natural") -> dict:
    torch.set_num_threads(1)  # more threads spin-wait badly when the cores are shared
    result = header("denoise")
    speech = heldout_speech(1, 1, texts=texts) if quick else heldout_speech(4, 2, texts=texts)
    items = mixtures(speech)
    audio_s = sum(len(m["noisy"]) for m in items) / SR
    result["set"] = {"mixtures": len(items), "audio_s": round(audio_s, 2), "snrs_db": list(SNRS),
                     "kinds": sorted({m["kind"] for m in items}), "seed": SEED, "text_source": texts}
    svc = DenoiseService()
    models: dict[str, dict] = {}
    models["noisy"] = score(items, [m["noisy"] for m in items])
    for name in MODELS:
        try:
            if name.startswith("zipenhancer"):
                svc.network(name)  # load outside the timing
            else:
                svc.enhance(AudioClip(items[0]["noisy"], SR), name)  # warm up
        except Exception as exc:  # a missing weight file is reported, not fatal
            models[name] = {"error": str(exc)}
            continue
        t0, c0 = time.perf_counter(), time.process_time()
        outs = _enhanced(svc, name, items)
        took, cpu = time.perf_counter() - t0, time.process_time() - c0
        models[name] = {
            **score(items, outs),
            "real_time_factor": round(took / audio_s, 4),
            "cpu_real_time_factor": round(cpu / audio_s, 4),
            "peak_rss_mb_after": round(peak_rss_mb(), 1),
        }
        if name.startswith("zipenhancer"):
            net = svc.network(name)
            models[name]["parameters"] = sum(p.numel() for p in net.parameters())
            clip = AudioClip(np.concatenate([m["noisy"] for m in items])[:10 * SR], SR)
            models[name]["rtf_10s_best_of_3"] = round(
                best_of(lambda: svc.enhance(clip, name), 1 if quick else 3) / clip.duration, 4)
            models[name]["cpu_rtf_10s_best_of_3"] = round(
                _best_cpu(lambda: svc.enhance(clip, name), 1 if quick else 3) / clip.duration, 4)
    result["models"] = models
    zip_ = models.get("zipenhancer-small", {}).get("metrics")
    rnn = models.get("rnnoise", {}).get("metrics")
    if zip_ and rnn:
        result["goals"] = {
            "small_si_sdr_minus_rnnoise_db": round(zip_["si_sdr"] - rnn["si_sdr"], 3),
            "small_pesq_minus_rnnoise": round(zip_["pesq_wb"] - rnn["pesq_wb"], 3),
            "small_rtf": models["zipenhancer-small"]["rtf_10s_best_of_3"],
            "small_cpu_rtf": models["zipenhancer-small"]["cpu_rtf_10s_best_of_3"],
        }
        big = models.get("zipenhancer", {}).get("metrics")
        if big:
            result["goals"]["paper_si_sdr_minus_rnnoise_db"] = round(big["si_sdr"] - rnn["si_sdr"], 3)
            result["goals"]["paper_pesq_minus_rnnoise"] = round(big["pesq_wb"] - rnn["pesq_wb"], 3)
    result["real"] = real_section(svc, quick)
    result["peak_rss_mb"] = round(peak_rss_mb(), 1)
    if json_path:
        with open(json_path, "w") as f:
            json.dump(result, f, indent=2)
    return result
