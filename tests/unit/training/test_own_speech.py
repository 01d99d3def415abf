"""A real dataset's own speech (services.training.own_speech): the SNR estimate follows a known
mix, clean tracks are used as decoded, noisy ones are denoised first."""

from __future__ import annotations

import numpy as np
import pytest

from services.common.types import AudioClip
from services.training.own_speech import NOISY_BELOW_DB, estimated_snr_db, own_speech


@pytest.fixture(scope="module")
def speech(tts) -> AudioClip:
    """A few seconds of TTS speech with pauses, resampled to 16 kHz."""
    from services.common.audio import resample

    s = tts.synthesize("Hello there. How are you today? I am fine, thank you. See you later.")
    return AudioClip(resample(s.audio.samples, s.audio.sample_rate, 16_000).astype(np.float32), 16_000)


def _noisy(clip: AudioClip, snr_db: float) -> AudioClip:
    """White noise under the speech at `snr_db` relative to the speech's active level."""
    from services.denoise.service import active_level

    rng = np.random.default_rng(0)
    noise = rng.standard_normal(len(clip.samples))
    gain = active_level(clip.samples) / (active_level(noise) * 10 ** (snr_db / 20))
    return AudioClip((clip.samples + gain * noise).astype(np.float32), clip.sample_rate)


@pytest.mark.parametrize("snr", [30.0, 20.0, 10.0])
def test_estimate_follows_the_mix(speech, snr: float) -> None:
    assert estimated_snr_db(_noisy(speech, snr)) == pytest.approx(snr, abs=4.0)


def test_clean_speech_is_used_as_decoded(speech) -> None:
    out = own_speech(_noisy(speech, 35.0))
    assert not out.denoised and out.model is None and out.snr_db >= NOISY_BELOW_DB
    clean = own_speech(speech)
    assert clean.clip is speech and clean.snr_db > 50  # TTS pauses are near digital silence
    assert clean.as_dict()["denoised"] is False


def test_noisy_speech_is_denoised_first(speech) -> None:
    noisy = _noisy(speech, 8.0)
    out = own_speech(noisy)
    assert out.denoised and out.model and out.snr_db < NOISY_BELOW_DB
    assert len(out.clip.samples) == len(noisy.samples) and out.clip.sample_rate == 16_000
    assert estimated_snr_db(out.clip) > out.snr_db + 10  # the floor between words is gone


def test_too_short_a_track_is_refused() -> None:
    with pytest.raises(ValueError, match="too short"):
        estimated_snr_db(AudioClip(np.zeros(800, np.float32), 16_000))
