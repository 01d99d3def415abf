"""Audio-to-video offset of a talking video, found from the mouth alone, and the audio shifted
to match.

Real footage is often out of sync by a few frames (an encoder's or an editor's delay; the
20 s Obama clip's sound comes 240 ms after the lips). The audio encoder learns the mouth of
frame t from the sound around t: with the sound elsewhere it learns nothing that carries
over to held-out speech, nor to `say`, whose speech is in sync by construction. SyncNet would
measure the offset but needs weights; the mouth opening (FaceMesh) against the loudness of
the sound, cross-correlated over ±0.6 s, finds it on its own when the speech is clear. The
shift is applied only when the peak is clear (`MIN_PEAK`, `MIN_GAIN`); otherwise the audio
is left as decoded and prepare.json says why. A shift leaves the frames at one end without
sound of their own (their sound lies outside the recording): SubjectDataset.soundless names
them, and neither training nor `eval --dataset` uses them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from services.common.types import AudioClip
from services.subjects.prepare.landmarks import IBUG68

#: Offsets searched, seconds each way.
MAX_LAG_S = 0.6
#: The correlation at the best offset must reach this ...
MIN_PEAK = 0.3
#: ... and beat the correlation without a shift by this much.
MIN_GAIN = 0.15


@dataclass(frozen=True)
class AvOffset:
    """`frames` > 0: the sound comes that many frames after the picture (and was moved
    earlier when `applied`)."""

    frames: int
    corr: float  # mouth opening vs loudness at the best offset
    corr_at_zero: float  # ... and as decoded
    applied: bool

    def as_dict(self) -> dict[str, float | int | bool]:
        return {k: round(v, 3) if isinstance(v, float) else v for k, v in asdict(self).items()}


def mouth_opening(mesh: np.ndarray) -> np.ndarray:
    """[N] outer-lip gap (iBUG 51–57) over the inter-ocular distance (36–45), FaceMesh [N, 478, ≥2]."""
    pts = np.asarray(mesh, np.float64)[..., :2]

    def dist(a: int, b: int) -> np.ndarray:
        return np.linalg.norm(pts[:, IBUG68[a]] - pts[:, IBUG68[b]], axis=1)

    return dist(51, 57) / np.maximum(dist(36, 45), 1e-6)


def loudness(clip: AudioClip, n_frames: int, fps: float) -> np.ndarray:
    """[n_frames] log RMS of the samples under each video frame."""
    x = np.asarray(clip.samples, np.float64)
    edges = np.round(np.arange(n_frames + 1) * clip.sample_rate / fps).astype(np.int64)
    sq = np.concatenate([[0.0], np.cumsum(x * x)])
    edges = edges.clip(0, len(x))
    width = np.maximum(np.diff(edges), 1)
    return 0.5 * np.log((sq[edges[1:]] - sq[edges[:-1]]) / width + 1e-10)


def lag_correlations(opening: np.ndarray, loud: np.ndarray, max_lag: int) -> np.ndarray:
    """[2·max_lag + 1] Pearson correlation of opening(t) with loud(t + lag), lag = −max_lag … max_lag."""
    n = min(len(opening), len(loud))
    out = np.full(2 * max_lag + 1, np.nan)
    for k, lag in enumerate(range(-max_lag, max_lag + 1)):
        a = opening[max(0, -lag):n - max(0, lag)]
        b = loud[max(0, lag):n - max(0, -lag)]
        if len(a) > 2 and a.std() > 0 and b.std() > 0:
            out[k] = float(np.corrcoef(a, b)[0, 1])
    return out


def estimate_offset(mesh: np.ndarray, clip: AudioClip, fps: float) -> AvOffset:
    """The offset that best lines the loudness up with the mouth opening (see the module doc)."""
    n = len(mesh)
    max_lag = max(1, int(round(MAX_LAG_S * fps)))
    corr = lag_correlations(mouth_opening(mesh), loudness(clip, n, fps), max_lag)
    zero = float(corr[max_lag]) if np.isfinite(corr[max_lag]) else 0.0
    if not np.isfinite(corr).any():
        return AvOffset(0, zero, zero, False)
    best = int(np.nanargmax(corr))
    frames, peak = best - max_lag, float(corr[best])
    applied = frames != 0 and peak >= MIN_PEAK and peak - zero >= MIN_GAIN
    return AvOffset(frames, peak, zero, applied)


def shift_audio(clip: AudioClip, frames: int, fps: float) -> AudioClip:
    """The clip moved `frames` video frames earlier (later when negative), same length, the
    gap filled with silence."""
    k = int(round(frames * clip.sample_rate / fps))
    x = clip.samples
    if k == 0:
        return clip
    if k > 0:
        moved = np.concatenate([x[k:], np.zeros(min(k, len(x)), x.dtype)])
    else:
        moved = np.concatenate([np.zeros(min(-k, len(x)), x.dtype), x[:len(x) + k]])
    return AudioClip(moved[:len(x)], clip.sample_rate)
