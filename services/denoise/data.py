"""Training and evaluation data: a cache of clean TTS speech, and noisy mixtures made from it.

Clean speech comes from the project's own TTS voices (English and Mandarin, many speeds
and noise scales; the training voice mix by default: services.training.speech), handed in
as a speech source and synthesised once into a git-ignored cache
directory (`python -m services.training.denoise_cache`) so that training epochs never
re-synthesise. Mixtures are made on the fly: a random crop of clean speech,
an optional synthetic room, and one or two generated noises at a random SNR.

Cache layout: ``<dir>/<split>/speech.npy`` (int16, all utterances end to end at 16 kHz)
and ``<dir>/<split>/index.json`` (offsets, texts, languages, voices, synthesis options).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.signal import resample_poly

from services.common.types import ANALYSIS_SAMPLE_RATE, SpeechSource, SynthesisOptions
from services.denoise import noise as noise_gen

DEFAULT_CACHE = Path(__file__).resolve().parents[2] / "cache" / "denoise"


def _to_16k(samples: np.ndarray, rate: int) -> np.ndarray:
    if rate == ANALYSIS_SAMPLE_RATE:
        return samples.astype(np.float32)
    g = np.gcd(rate, ANALYSIS_SAMPLE_RATE)
    return resample_poly(samples, ANALYSIS_SAMPLE_RATE // g, rate // g).astype(np.float32)


def build_clean_cache(speak: SpeechSource, out_dir: Path, split: str, n_en: int, n_zh: int, seed: int = 0,
                      progress: bool = True, texts: str = "natural", voices: str = "") -> Path:
    """Have `speak` say n_en English + n_zh Mandarin sentences of `split` (from the text
    source `texts`: services.common.corpus) into out_dir/split; `voices` names the source
    in the index (each utterance also records its Speech's voice)."""
    from tqdm import tqdm

    from services.common.corpus import sentences

    rng = np.random.default_rng(seed)
    jobs = [(t, "en") for t in sentences(n_en, "en", seed=seed, split=split, source=texts)]
    jobs += [(t, "zh") for t in sentences(n_zh, "zh", seed=seed, split=split, source=texts)]
    rng.shuffle(jobs)
    chunks, index, pos = [], [], 0
    for text, lang in tqdm(jobs, desc=f"tts cache {split}", disable=not progress):
        opts = SynthesisOptions(length_scale=float(rng.uniform(0.75, 1.35)),
                                noise_scale=float(rng.uniform(0.3, 1.0)),
                                noise_w_scale=float(rng.uniform(0.4, 1.1)))
        speech = speak(text, lang, options=opts)
        wav = _to_16k(speech.audio.samples, speech.audio.sample_rate)
        wav = wav / max(1e-6, float(np.abs(wav).max())) * 0.9
        pcm = np.round(wav * 32767).astype(np.int16)
        chunks.append(pcm)
        index.append({"start": pos, "length": len(pcm), "text": text, "lang": lang, "voice": speech.voice,
                      "length_scale": opts.length_scale, "noise_scale": opts.noise_scale,
                      "noise_w_scale": opts.noise_w_scale})
        pos += len(pcm)
    dest = out_dir / split
    dest.mkdir(parents=True, exist_ok=True)
    np.save(dest / "speech.npy", np.concatenate(chunks))
    (dest / "index.json").write_text(json.dumps({"sample_rate": ANALYSIS_SAMPLE_RATE, "text_source": texts,
                                                 "voices": voices, "utterances": index}, ensure_ascii=False))
    return dest


@dataclass
class SpeechCache:
    """All cached utterances of one split, as float32 arrays at 16 kHz."""

    utterances: list[np.ndarray]
    texts: list[str]

    @classmethod
    def load(cls, directory: Path) -> "SpeechCache":
        meta = json.loads((directory / "index.json").read_text())
        pcm = np.load(directory / "speech.npy", allow_pickle=False)
        utts = [pcm[u["start"]:u["start"] + u["length"]].astype(np.float32) / 32767.0
                for u in meta["utterances"]]
        return cls(utts, [u["text"] for u in meta["utterances"]])


@dataclass(frozen=True)
class MixtureConfig:
    seconds: float = 2.0
    snr_low: float = -5.0
    snr_high: float = 20.0
    reverb_prob: float = 0.25
    second_noise_prob: float = 0.3
    clean_prob: float = 0.03  # a few clean inputs teach "do no harm"


def _speech_segment(cache: SpeechCache, n: int, rng: np.random.Generator) -> np.ndarray:
    """n samples of speech: utterances joined with short gaps, random start, random pitch."""
    out = np.zeros(0, np.float32)
    while len(out) < n + 1:
        u = cache.utterances[rng.integers(len(cache.utterances))]
        factor = rng.uniform(0.9, 1.1)  # speed/pitch shift by resampling: more voice variety
        if abs(factor - 1.0) > 0.01:
            up = 100
            u = resample_poly(u, up, int(round(up * factor))).astype(np.float32)
        gap = np.zeros(int(rng.uniform(0.0, 0.3) * ANALYSIS_SAMPLE_RATE), np.float32)
        out = np.concatenate([out, gap, u])
    start = rng.integers(0, len(out) - n)
    return out[start:start + n]


def make_mixture(cache: SpeechCache, rng: np.random.Generator, cfg: MixtureConfig,
                 kinds: tuple[str, ...] = noise_gen.KINDS,
                 snr_db: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(noisy, target) float32 pairs of cfg.seconds at 16 kHz (target = clean speech with
    at most the early reflections of its room)."""
    n = int(cfg.seconds * ANALYSIS_SAMPLE_RATE)
    clean = _speech_segment(cache, n, rng)
    clean = clean * rng.uniform(0.05, 0.9) / max(1e-6, float(np.abs(clean).max()))
    target = clean
    if rng.random() < cfg.reverb_prob:  # heard: the whole room; target: early reflections
        clean, target = noise_gen.reverberate(clean, rng, ANALYSIS_SAMPLE_RATE)
    if snr_db is None and rng.random() < cfg.clean_prob:
        return clean.astype(np.float32), target.astype(np.float32)
    snr = rng.uniform(cfg.snr_low, cfg.snr_high) if snr_db is None else snr_db
    kind = kinds[rng.integers(len(kinds))]
    noise = noise_gen.generate(kind, n, rng, ANALYSIS_SAMPLE_RATE, babble_source=cache.utterances)
    if snr_db is None and rng.random() < cfg.second_noise_prob:
        other = kinds[rng.integers(len(kinds))]
        extra = noise_gen.generate(other, n, rng, ANALYSIS_SAMPLE_RATE,
                                   babble_source=cache.utterances)
        noise = noise + extra * rng.uniform(0.2, 1.0) * noise_gen.rms(noise) / max(
            1e-8, noise_gen.rms(extra))
    noisy = noise_gen.mix_at_snr(clean, noise, snr)
    peak = float(np.abs(noisy).max())
    if peak > 0.99:  # keep the pair in [-1, 1] by scaling both
        noisy, target = noisy / peak * 0.99, target / peak * 0.99
    return noisy.astype(np.float32), target.astype(np.float32)
