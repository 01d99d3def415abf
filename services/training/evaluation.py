"""`talking-head eval`: render held-out sentences with a subject trained on the oracle and
compare with the oracle's exact ground truth (same speech, same camera, same blinks).

Metrics (means over frames, then over texts):
  psnr        dB over whole frames
  bg_psnr     dB over the pixels where the truth shows only background (floaters show here)
  ssim        structural similarity (RGB; services.renderer.losses.frames_ssim)
  lmd         mouth landmark distance in pixels: |inner-lip gap(rendered) − inner-lip gap(truth)|,
              both measured on the images with the same mouth measure (no landmark detector ships)
  mouth_corr  Pearson correlation of the per-frame mouth opening, rendered vs truth
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

import numpy as np

from services.common.audio import pad_to_frames
from services.common.errors import InvalidInput
from services.gateway.stages import LocalStages

_HAN = re.compile(r"[\u3400-\u9fff]")


def guess_lang(text: str) -> str:
    return "zh" if _HAN.search(text) else "en"


@dataclass
class TextScore:
    text: str
    lang: str
    frames: int
    psnr: float
    bg_psnr: float
    ssim: float
    lmd: float
    mouth_corr: float

    def as_dict(self) -> dict[str, Any]:
        return {k: (None if isinstance(v, float) and not math.isfinite(v) else round(v, 4) if isinstance(v, float)
                    else v) for k, v in self.__dict__.items()}


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation; NaN when undefined (under 3 values, or a constant series)."""
    if len(a) < 3 or a.std() < 1e-9 or b.std() < 1e-9:
        return float("nan")
    return float(np.corrcoef(a, b)[0, 1])


def psnr_db(mse: float) -> float:
    """PSNR in dB of a mean squared error on [0, 1] pixels (NaN stays NaN)."""
    return mse if math.isnan(mse) else -10 * math.log10(max(mse, 1e-12))


def score_frames(rendered: np.ndarray, truth: np.ndarray, landmarks: np.ndarray,
                 background: np.ndarray) -> dict[str, float]:
    """Compare uint8 frame stacks [T, H, W, 3] given the true landmarks [T, 68, 2] and the
    true background mask [T, H, W]."""
    from services.renderer.losses import frames_ssim
    from services.subjects.measure import mouth_gap_px

    diff = rendered.astype(np.float64) / 255 - truth.astype(np.float64) / 255
    mse = float(np.mean(diff**2))
    bg_mse = float(np.mean(diff[background] ** 2)) if background.any() else float("nan")
    ssim = frames_ssim(rendered, truth)
    gap_r = np.array([mouth_gap_px(r, lm) for r, lm in zip(rendered, landmarks)])
    gap_t = np.array([mouth_gap_px(t, lm) for t, lm in zip(truth, landmarks)])
    return {"psnr": psnr_db(mse), "bg_psnr": psnr_db(bg_mse), "ssim": ssim,
            "lmd": float(np.mean(np.abs(gap_r - gap_t))), "mouth_corr": pearson(gap_r, gap_t)}


def evaluate_oracle(stages: LocalStages, subject_id: str, texts: list[str], progress: bool = True) -> dict[str, Any]:
    """Scores per text and their means; `stages` supplies the TTS, the encoder and the subject."""
    from tqdm import tqdm

    from services.subjects.oracle import OracleSubject
    from services.training.data import renderer_poses

    texts = [t.strip() for t in texts if t.strip()]
    if not texts:
        raise InvalidInput("no texts to evaluate")
    opened = stages.open(subject_id)
    subject = opened.renderer
    oracle_info = subject.manifest.get("oracle") or {"seed": 0, "size": subject.size[0]}
    if int(oracle_info["size"]) != subject.size[0]:
        raise InvalidInput(f"subject {subject_id!r} is {subject.size[0]}px but its oracle is {oracle_info['size']}px")
    oracle = OracleSubject(int(oracle_info["size"]), int(oracle_info["seed"]))
    fps = subject.fps
    scores: list[TextScore] = []
    for text in tqdm(texts, desc="eval", unit="text", disable=not progress):
        lang = guess_lang(text)
        speech = stages.tts.synthesize(text, lang)
        truth = oracle.ground_truth(speech, fps)
        n = len(truth.images)
        clip, _ = pad_to_frames(speech.audio, fps, n)
        codes = stages.encoder.encode(clip, opened.audio_encoder, fps, lang=lang).codes[:n]
        poses = renderer_poses(truth.c2w).numpy()
        frames = np.concatenate(list(subject.render(codes, poses, truth.blink, frames_per_batch=8, fps=fps)))
        s = score_frames(frames, truth.images, truth.landmarks, truth.background)
        scores.append(TextScore(text, lang, n, **s))
    keys = ("psnr", "bg_psnr", "ssim", "lmd", "mouth_corr")
    by_lang = {lang: _means([s for s in scores if s.lang == lang], keys) for lang in sorted({s.lang for s in scores})}
    return {"subject": subject_id, "texts": len(scores), **_means(scores, keys), "by_lang": by_lang,
            "per_text": [s.as_dict() for s in scores]}


def _means(scores: list[TextScore], keys: tuple[str, ...]) -> dict[str, float | None]:
    """Means ignoring undefined values (a correlation over a mouth that never moved); None if none."""
    return {k: finite_mean([getattr(s, k) for s in scores]) for k in keys}


def finite_mean(values: Any) -> float | None:
    """Mean of the finite values, rounded to 4 places; None when there are none."""
    vals = [float(v) for v in np.asarray(values, np.float64).reshape(-1) if math.isfinite(v)]
    return round(float(np.mean(vals)), 4) if vals else None
