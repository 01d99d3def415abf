"""What a speech source sounds like, cheaply: median F0 and spectral centroid per clip.

F0: normalised autocorrelation of 40 ms frames (10 ms hop) at 16 kHz, 60-500 Hz; a frame
is voiced when it is within 30 dB of the clip's loudest frame and its best
autocorrelation peak exceeds 0.6; the lag taken is the first peak within 90 % of the best one (which
avoids the octave-down errors of a plain maximum), refined with a parabola. Spectral centroid: the
magnitude-weighted mean frequency of the frames within 30 dB of the loudest.

    python -m services.training.voice_stats                       # sample the voice mix
    python -m services.training.voice_stats --cache cache/denoise/train --json out/voices.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from services.common.audio import resample
from services.common.types import ANALYSIS_SAMPLE_RATE

F0_RANGE = (60.0, 500.0)
_FRAME, _HOP = 640, 160  # 40 ms, 10 ms at 16 kHz
_VOICED_PEAK = 0.6
_ACTIVE_DB = 30.0


def _frames(samples: np.ndarray, rate: int) -> np.ndarray:
    x = resample(np.asarray(samples, dtype=np.float32), rate, ANALYSIS_SAMPLE_RATE).astype(np.float64)
    if len(x) < _FRAME:
        x = np.pad(x, (0, _FRAME - len(x)))
    n = 1 + (len(x) - _FRAME) // _HOP
    idx = np.arange(_FRAME)[None, :] + _HOP * np.arange(n)[:, None]
    frames = x[idx]
    return frames - frames.mean(axis=1, keepdims=True)


def _active(frames: np.ndarray) -> np.ndarray:
    energy = (frames ** 2).mean(axis=1)
    return energy > energy.max() * 10 ** (-_ACTIVE_DB / 10) if energy.max() > 0 else np.zeros(len(frames), bool)


def f0_track(samples: np.ndarray, rate: int) -> np.ndarray:
    """F0 in Hz of every voiced 10 ms frame (unvoiced frames left out)."""
    frames = _frames(samples, rate)
    frames = frames[_active(frames)]
    if not len(frames):
        return np.zeros(0)
    spec = np.fft.rfft(frames * np.hanning(_FRAME), n=2 * _FRAME, axis=1)
    ac = np.fft.irfft(np.abs(spec) ** 2, axis=1)[:, :_FRAME]
    # unbias for the shrinking overlap of the windowed frame with itself
    w = np.hanning(_FRAME)
    wac = np.fft.irfft(np.abs(np.fft.rfft(w, n=2 * _FRAME)) ** 2)[:_FRAME]
    nacf = ac / np.maximum(ac[:, :1], 1e-12) / np.maximum(wac / wac[0], 1e-3)
    lo, hi = int(ANALYSIS_SAMPLE_RATE / F0_RANGE[1]), int(ANALYSIS_SAMPLE_RATE / F0_RANGE[0])
    band = nacf[:, lo:hi + 1]
    peak = band.max(axis=1)
    voiced = peak > _VOICED_PEAK
    first = np.argmax(band >= 0.9 * peak[:, None], axis=1)
    # climb to the top of that peak, then refine it with a parabola through its neighbours
    rows = np.arange(len(band))
    for _ in range(hi - lo):
        step = (first + 1 < band.shape[1]) & (band[rows, np.minimum(first + 1, band.shape[1] - 1)] > band[rows, first])
        if not step.any():
            break
        first = first + step
    lag = (lo + first).astype(np.float64)
    a, b, c = nacf[rows, lo + first - 1], nacf[rows, lo + first], nacf[rows, np.minimum(lo + first + 1, _FRAME - 1)]
    denom = a - 2 * b + c
    lag += np.where(np.abs(denom) > 1e-12, 0.5 * (a - c) / np.where(denom == 0, 1, denom), 0.0).clip(-0.5, 0.5)
    return (ANALYSIS_SAMPLE_RATE / lag[voiced]).astype(np.float64)


def median_f0(samples: np.ndarray, rate: int) -> float:
    """Median F0 (Hz) over voiced frames; nan when nothing is voiced."""
    track = f0_track(samples, rate)
    return float(np.median(track)) if len(track) else float("nan")


def spectral_centroid(samples: np.ndarray, rate: int) -> float:
    """Mean spectral centroid (Hz, at 16 kHz) of the clip's active frames."""
    frames = _frames(samples, rate)
    frames = frames[_active(frames)]
    if not len(frames):
        return float("nan")
    mag = np.abs(np.fft.rfft(frames * np.hanning(_FRAME), axis=1))
    freqs = np.fft.rfftfreq(_FRAME, 1 / ANALYSIS_SAMPLE_RATE)
    return float(np.mean((mag * freqs).sum(axis=1) / np.maximum(mag.sum(axis=1), 1e-12)))


# --- the voice table ------------------------------------------------------------------

#: A voice counts as female-range above this median F0 (Hz).
FEMALE_F0 = 165.0


def voice_table(clips: list[tuple[str, str, np.ndarray, int]]) -> list[dict]:
    """(voice row, lang, samples, rate) clips → one row per (voice, lang): count, seconds,
    median F0 over all voiced frames, mean spectral centroid."""
    groups: dict[tuple[str, str], list] = {}
    for voice, lang, samples, rate in clips:
        groups.setdefault((voice, lang), []).append((samples, rate))
    rows = []
    for (voice, lang), items in sorted(groups.items()):
        tracks = [f0_track(x, r) for x, r in items]
        f0 = np.concatenate(tracks) if tracks else np.zeros(0)
        rows.append({"voice": voice, "lang": lang, "count": len(items),
                     "seconds": round(sum(len(x) / r for x, r in items), 1),
                     "f0_median": round(float(np.median(f0)), 1) if len(f0) else None,
                     "centroid": round(float(np.nanmean([spectral_centroid(x, r) for x, r in items])))})
    return rows


def format_table(rows: list[dict]) -> str:
    lines = [f"{'voice':<22}{'lang':<6}{'count':>6}{'seconds':>9}{'F0 med':>8}{'centroid':>10}"]
    for r in rows:
        f0 = "-" if r["f0_median"] is None else f"{r['f0_median']:.0f}"
        lines.append(f"{r['voice']:<22}{r['lang']:<6}{r['count']:>6}{r['seconds']:>9.1f}{f0:>8}{r['centroid']:>10}")
    total = sum(r["seconds"] for r in rows)
    female = sum(r["seconds"] for r in rows if (r["f0_median"] or 0) > FEMALE_F0)
    lines.append(f"female-range (F0 median > {FEMALE_F0:.0f} Hz): {female:.0f} of {total:.0f} s "
                 f"({100 * female / max(total, 1e-9):.0f} %)")
    return "\n".join(lines)


def sample_clips(n_en: int, n_zh: int, seed: int, voices: str, by: str) -> list[tuple[str, str, np.ndarray, int]]:
    """Training sentences spoken by the voice set `voices` (services.training.speech)."""
    from services.common.corpus import sentences
    from services.training.speech import speech_source, voice_family

    speak = speech_source(voices, seed=f"table-{seed}")
    clips = []
    for lang, n in (("en", n_en), ("zh", n_zh)):
        for text in sentences(n, lang, seed=seed, split="train"):
            s = speak(text, lang)
            row = voice_family(s.voice) if by == "family" else s.voice.split("@")[0].split("~")[0]
            clips.append((row, lang, s.audio.samples, s.audio.sample_rate))
    return clips


def cache_clips(directory: Path, by: str) -> list[tuple[str, str, np.ndarray, int]]:
    """The utterances of a denoiser speech cache split (services.denoise.data layout)."""
    from services.training.speech import voice_family

    meta = json.loads((directory / "index.json").read_text())
    pcm = np.load(directory / "speech.npy", allow_pickle=False)
    out = []
    for u in meta["utterances"]:
        voice = u.get("voice", "joe")
        row = voice_family(voice) if by == "family" else voice.split("@")[0].split("~")[0]
        out.append((row, u["lang"], pcm[u["start"]:u["start"] + u["length"]].astype(np.float32) / 32767,
                    int(meta["sample_rate"])))
    return out


def main(argv: list[str] | None = None) -> int:
    from services.common.errors import TalkingHeadError
    from services.training.speech import VOICE_SETS

    p = argparse.ArgumentParser(prog="python -m services.training.voice_stats",
                                description="Voices x languages of training speech: count, seconds, F0, centroid.")
    p.add_argument("--cache", type=Path, help="a denoiser speech cache split (e.g. cache/denoise/train); "
                                              "default: sample the voice set afresh")
    p.add_argument("--voices", choices=VOICE_SETS, default="mix")
    p.add_argument("--en", type=int, default=120, help="English sentences to sample")
    p.add_argument("--zh", type=int, default=60, help="Mandarin sentences to sample")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--by", choices=["family", "variant"], default="family",
                   help="rows: voice families (default) or every espeak variant")
    p.add_argument("--json", type=Path, help="also write the rows here")
    a = p.parse_args(argv)
    try:
        if a.cache is not None and not (a.cache / "index.json").is_file():
            raise TalkingHeadError(f"no speech cache at {a.cache} (index.json missing)")
        clips = cache_clips(a.cache, a.by) if a.cache else sample_clips(a.en, a.zh, a.seed, a.voices, a.by)
    except TalkingHeadError as exc:
        p.error(str(exc))
    rows = voice_table(clips)
    print(format_table(rows))
    if a.json:
        a.json.parent.mkdir(parents=True, exist_ok=True)
        a.json.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
