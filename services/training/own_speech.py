"""A real dataset's own speech as training and `eval --dataset` hear it: denoised first when it
is noisy.

Noise in the track reaches the audio encoder as features the mouth never follows, and `say`
feeds it clean speech. The SNR is estimated without a reference: the level of the louder half
of 100 ms frames (speech) over that of the quietest tenth (the floor between words). On the
20 s Obama clip mixed with recorded kitchen noise at 30 / 20 / 10 / 5 / 0 dB it reads
30.9 / 22.2 / 12.8 / 8.5 / 5.4 dB; the two real clips as recorded read 37 and 40 dB. Below
`NOISY_BELOW_DB` the track goes through the DenoiseService (its default model) first; above
it, it is used as decoded.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from services.common.types import AudioClip
from services.denoise.models import DEFAULT_MODEL
from services.denoise.service import active_level

#: Tracks whose estimated SNR is below this are denoised before training.
NOISY_BELOW_DB = 20.0


def estimated_snr_db(clip: AudioClip) -> float:
    """Speech level over noise floor in dB (see the module doc); inf for a track without a floor."""
    x = np.asarray(clip.samples, np.float64)
    frame = max(1, clip.sample_rate // 10)
    n = len(x) // frame
    if n < 10:
        raise ValueError(f"{len(x) / clip.sample_rate:.2f} s of audio is too short to estimate its noise")
    energy = np.sort(np.mean(np.square(x[:n * frame]).reshape(n, frame), axis=1))
    floor = float(np.sqrt(energy[:n // 10].mean()))
    speech = active_level(x, clip.sample_rate)
    return float("inf") if floor <= 0 else float(20 * np.log10(max(speech, 1e-12) / floor))


@dataclass(frozen=True)
class OwnSpeech:
    clip: AudioClip
    snr_db: float  # of the track as decoded
    denoised: bool
    model: str | None  # the denoiser's model, when denoised

    def as_dict(self) -> dict[str, Any]:
        return {"snr_db": round(self.snr_db, 1) if np.isfinite(self.snr_db) else None, "denoised": self.denoised,
                "denoise_model": self.model, "noisy_below_db": NOISY_BELOW_DB}


def own_speech(clip: AudioClip, denoiser: Any = None, model: str = DEFAULT_MODEL) -> OwnSpeech:
    """The track as training hears it. `denoiser`: a DenoiseService (made on demand)."""
    snr = estimated_snr_db(clip)
    if snr >= NOISY_BELOW_DB:
        return OwnSpeech(clip, snr, False, None)
    if denoiser is None:
        from services.denoise.service import DenoiseService

        denoiser = DenoiseService(max_seconds=max(clip.duration + 1.0, 60.0))
    return OwnSpeech(denoiser.enhance(clip, model), snr, True, model)
