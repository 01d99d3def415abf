"""The training voice mix: every kind speaks with timings that tile its audio, the draws are
deterministic given a seed, female voices are covered, and `--voices` switches the source."""

import json
import random
import subprocess
import sys

import numpy as np
import pytest

from services.common.errors import InvalidInput
from services.encoder.units import speech_spans
from services.training.content_model import cache_voices, load_split, make_shard
from services.training.speech import (ESPEAK_FEMALE, MIX_WEIGHTS, VoiceDraw, VoiceMix, bundled_voice, draw_voice,
                                      speak_as, speech_source, voice_family)
from services.training.voice_stats import FEMALE_F0, format_table, median_f0, voice_table
from services.tts.espeak_backend import espeak_available

needs_espeak = pytest.mark.skipif(not espeak_available(), reason="espeak-ng is not installed (apt-get install espeak-ng)")
ONE_OF_EACH = [VoiceDraw("joe"), VoiceDraw("joe~shifted", pitch=2.2, formant=1.18),
               VoiceDraw("espeak", "f3", 55, 60), VoiceDraw("espeak~shifted", "m2", 40, 50, pitch=1.1, formant=0.95)]


def _tiles(timings, duration):
    assert timings and timings[0].start == 0.0
    assert all(abs(a.end - b.start) < 1e-12 and b.end > b.start for a, b in zip(timings, timings[1:]))
    assert timings[-1].end == pytest.approx(duration, abs=1e-9)


def test_draws_are_deterministic_given_a_seed_and_cover_every_kind_and_female_voices():
    a = [draw_voice(random.Random("s1")) for _ in range(3)]
    assert a == [draw_voice(random.Random("s1")) for _ in range(3)]
    rng, other = random.Random("s1"), random.Random("s2")
    draws = [draw_voice(rng) for _ in range(400)]
    assert draws[:20] != [draw_voice(other) for _ in range(20)]
    for kind, weight in MIX_WEIGHTS.items():
        share = sum(d.kind == kind for d in draws) / len(draws)
        assert share == pytest.approx(weight, abs=0.07)
    female = [d for d in draws if d.pitch >= 1.9 or (d.engine == "espeak" and d.variant in ESPEAK_FEMALE)]
    assert len(female) > 0.25 * len(draws)


def test_voice_names_record_the_knobs_and_group_into_families():
    assert voice_family("joe-en") == "joe"
    assert VoiceDraw("joe").name == "joe"
    assert VoiceDraw("joe~shifted", pitch=2.2, formant=1.18).family == "joe~female"
    assert VoiceDraw("joe~shifted", pitch=1.1, formant=0.95).family == "joe~shifted"
    e = VoiceDraw("espeak~shifted", "f3", 55, 60, pitch=1.1, formant=0.95)
    assert e.name == "espeak+f3@55/60~p1.10f0.95" and e.family == "espeak-female~shifted"
    assert VoiceDraw("espeak", "", 50, 50).family == "espeak-male"


@needs_espeak
@pytest.mark.parametrize("voice", ONE_OF_EACH, ids=lambda v: v.kind)
@pytest.mark.parametrize("lang,text", [("en", "Your order ships on Monday."), ("zh", "我们明天见。")])
def test_every_kind_speaks_with_timings_that_tile_the_audio(voice, lang, text):
    speech = speak_as(voice, text, lang)
    assert speech.voice == voice.name and speech.lang == lang
    assert speech.audio.duration > 0.5 and np.abs(speech.audio.samples).max() > 0.05
    _tiles(speech.phonemes, speech.audio.duration)
    if lang == "zh":
        _tiles(speech.syllables, speech.audio.duration)
    assert len(speech_spans(speech)) >= 4


@needs_espeak
def test_a_shift_keeps_the_timings_of_the_unshifted_voice_and_raises_f0():
    from services.training.voice_shift import perturb_speech

    plain = speak_as(VoiceDraw("espeak", "m1", 50, 50), "Thank you for waiting.", "en")
    high = perturb_speech(plain, 1.9, 1.15)
    assert len(high.audio.samples) == len(plain.audio.samples) and high.phonemes == plain.phonemes
    rate = plain.audio.sample_rate
    assert median_f0(high.audio.samples, rate) > FEMALE_F0 > median_f0(plain.audio.samples, rate)


@needs_espeak
def test_the_mix_is_deterministic_given_its_seed():
    espeak_only = {"espeak": 0.5, "espeak~shifted": 0.5}
    a, b = VoiceMix(7, espeak_only), VoiceMix(7, espeak_only)
    for text in ("Good morning.", "Please hold the line."):
        sa, sb = a(text, "en"), b(text, "en")
        assert sa.voice == sb.voice and [t.phoneme for t in sa.phonemes] == [t.phoneme for t in sb.phonemes]
        assert sa.audio.duration == pytest.approx(sb.audio.duration, rel=0.01)
    assert VoiceMix(8, espeak_only)("Good morning.", "en").voice != VoiceMix(7, espeak_only)("Good morning.", "en").voice


def test_the_switch_names_a_source_and_refuses_others():
    assert speech_source("bundled") is bundled_voice()
    if espeak_available():
        assert isinstance(speech_source("mix", seed=1), VoiceMix)
    with pytest.raises(InvalidInput, match="unknown voices"):
        speech_source("choir")
    with pytest.raises(InvalidInput, match="mix weights"):
        VoiceMix(0, {"joe": 0.0})


def test_a_content_model_cache_holds_one_voice_set(tmp_path):
    cache_voices(tmp_path / "c", "mix")
    cache_voices(tmp_path / "c", "mix")
    with pytest.raises(SystemExit, match="holds mix voices, not bundled"):
        cache_voices(tmp_path / "c", "bundled")
    old = tmp_path / "old" / "data" / "train"
    old.mkdir(parents=True)
    np.savez(old / "en_0000.npz", audio=np.zeros(1))  # made before the marker: the bundled voice
    with pytest.raises(SystemExit, match="holds bundled voices, not mix"):
        cache_voices(tmp_path / "old", "mix")


@needs_espeak
def test_content_shards_train_on_the_mix_and_hold_out_the_bundled_voice(tmp_path):
    make_shard(tmp_path / "data" / "train" / "en_0000.npz", "train", "en", 0, 6, True, voices="mix")
    make_shard(tmp_path / "data" / "heldout" / "en_0000.npz", "heldout", "en", 0, 2, False, voices="mix")
    train, held = load_split(tmp_path, "train"), load_split(tmp_path, "heldout")
    assert {it["voice"] for it in held} == {"joe-en"}
    assert len({it["voice"] for it in train}) > 1
    assert all(it["labels"] and len(it["spans"]) == len(it["labels"]) for it in train)
    make_shard(tmp_path / "b" / "data" / "train" / "en_0000.npz", "train", "en", 0, 2, True, voices="bundled")
    assert {it["voice"] for it in load_split(tmp_path / "b", "train")} == {"joe-en"}


@needs_espeak
def test_denoise_cache_records_its_voices_and_bundled_keeps_the_old_voice(tmp_path):
    from services.training.denoise_cache import main

    for voices in ("mix", "bundled"):
        assert main(["--out", str(tmp_path / voices), "--en", "3", "--zh", "1", "--voices", voices]) == 0
    mix = json.loads((tmp_path / "mix" / "train" / "index.json").read_text())
    old = json.loads((tmp_path / "bundled" / "train" / "index.json").read_text())
    assert mix["voices"] == "mix" and old["voices"] == "bundled"
    assert {u["voice"] for u in old["utterances"]} == {"joe-en", "joe-zh"}
    assert len({u["voice"] for u in mix["utterances"]}) > 1


def test_data_makers_refuse_an_unknown_voice_set_with_exit_2():
    for module in ("services.training.content_model", "services.training.denoise_cache"):
        r = subprocess.run([sys.executable, "-m", module, "prepare" if "content" in module else "--en=1",
                            "--voices", "choir"], capture_output=True, text=True, timeout=120)
        assert r.returncode == 2 and "invalid choice: 'choir'" in r.stderr


def test_the_voice_table_counts_seconds_and_female_coverage():
    t = np.arange(16_000) / 16_000
    low = (np.sign(np.sin(2 * np.pi * 100 * t)) * 0.1).astype(np.float32)
    high = (np.sign(np.sin(2 * np.pi * 220 * t)) * 0.1).astype(np.float32)
    rows = voice_table([("joe", "en", low, 16_000), ("joe", "en", low, 16_000), ("espeak-female", "en", high, 16_000)])
    assert [(r["voice"], r["count"], r["seconds"]) for r in rows] == [("espeak-female", 1, 1.0), ("joe", 2, 2.0)]
    assert rows[0]["f0_median"] == pytest.approx(220, rel=0.02) and rows[1]["f0_median"] == pytest.approx(100, rel=0.02)
    assert "1 of 3 s (33 %)" in format_table(rows)
