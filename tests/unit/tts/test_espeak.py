"""espeak-ng formant voices: audio with the synthesiser's own phoneme timings, tiling it."""

import subprocess
import sys

import numpy as np
import pytest

from services.common.types import SynthesisOptions
from services.encoder.units import edit_distance, speech_spans
from services.tts.espeak_backend import EspeakBackend, _Phone, _segment_bounds, espeak_available
from services.tts.pinyin_phonemes import text_to_syllables
from services.tts.service import backend_speech

needs_espeak = pytest.mark.skipif(not espeak_available(), reason="espeak-ng is not installed (apt-get install espeak-ng)")


def _tiles(timings, duration):
    assert timings[0].start == 0.0
    assert all(abs(a.end - b.start) < 1e-12 and b.end > b.start for a, b in zip(timings, timings[1:]))
    assert timings[-1].end == pytest.approx(duration, abs=1e-9)


def test_a_phoneme_reported_at_the_next_ones_sample_shares_the_sound_before_it():
    # espeak reports "eɪ l z" with l and z at one sample: l must keep some time
    phones = [_Phone("t", 0, 1), _Phone("eɪ", 100, 1), _Phone("l", 400, 1), _Phone("z", 400, 1),
              _Phone("", 500, 1)]
    bounds = _segment_bounds(phones, 600)
    assert bounds == [(0, 100), (100, 250), (250, 400), (400, 500), (500, 600)]


@needs_espeak
def test_english_timings_tile_the_audio_and_match_the_piper_phonemes(tts):
    text = "The price is forty two dollars, and the little details matter."
    speech = backend_speech(EspeakBackend("f3"), text, "en")
    assert speech.audio.duration > 1.0 and np.abs(speech.audio.samples).max() > 0.05
    _tiles(speech.phonemes, speech.audio.duration)
    ours = [u for u, _, _ in speech_spans(speech)]
    piper = [u for u, _, _ in speech_spans(tts.synthesize(text, "en"))]
    assert edit_distance(piper, ours) <= 0.1 * len(piper)  # one espeak, two versions


@needs_espeak
def test_pauses_are_quiet_and_sounds_are_not():
    speech = backend_speech(EspeakBackend(), "Hello there. My friend, good morning.", "en")
    x, r = speech.audio.samples, speech.audio.sample_rate
    rms = {True: [], False: []}
    for t in speech.phonemes:
        seg = x[int(t.start * r) + 60:int(t.end * r) - 60]
        if len(seg) > 200:
            rms[t.phoneme == "sil"].append(float(np.sqrt(np.mean(seg ** 2))))
    assert np.median(rms[True]) < 0.1 * np.median(rms[False])


@needs_espeak
def test_mandarin_has_every_pinyin_syllable_timed_in_order():
    text = "我们常常去银行，谢谢你。"
    speech = backend_speech(EspeakBackend("m3"), text, "zh")
    _tiles(speech.syllables, speech.audio.duration)
    _tiles(speech.phonemes, speech.audio.duration)
    spoken = [t.phoneme for t in speech.syllables if t.phoneme != "sil"]
    assert spoken == [u.pinyin for u in text_to_syllables(text) if not isinstance(u, str)]
    assert spoken.count("chang2") == 2  # two equal neighbours stay two syllables


@needs_espeak
def test_same_phonemes_every_time_and_the_same_audio_in_a_fresh_process():
    text = "Your order has shipped and will arrive on Monday."
    a = backend_speech(EspeakBackend("f2", 50, 50), text, "en")
    b = backend_speech(EspeakBackend("f2", 50, 50), text, "en")
    assert [t.phoneme for t in a.phonemes] == [t.phoneme for t in b.phonemes]
    assert a.audio.duration == pytest.approx(b.audio.duration, rel=0.01)
    script = ("import hashlib; from services.tts.espeak_backend import EspeakBackend; "
              "from services.tts.service import backend_speech; "
              "print(hashlib.sha1(b''.join(backend_speech(EspeakBackend(v), t, l).audio.samples.tobytes() "
              "for v, t, l in [('f2', 'Good morning.', 'en'), ('m3', '我们明天见。', 'zh')])).hexdigest())")
    runs = {subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60,
                           check=True).stdout for _ in range(2)}
    assert len(runs) == 1


@needs_espeak
def test_slower_with_length_scale_and_female_variants_are_higher():
    from services.training.voice_stats import median_f0

    text = "Your order has shipped and will arrive on Monday."
    a = backend_speech(EspeakBackend("f2"), text, "en")
    slow = backend_speech(EspeakBackend("f2"), text, "en", SynthesisOptions(length_scale=1.4))
    assert slow.audio.duration > 1.2 * a.audio.duration
    male = backend_speech(EspeakBackend("m1"), text, "en")
    assert median_f0(a.audio.samples, a.audio.sample_rate) > 165 > median_f0(male.audio.samples, 22050)
