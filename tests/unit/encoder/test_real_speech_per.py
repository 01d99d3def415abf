"""PER against a transcript (no TTS timings): the labels, the helper, the real recordings."""

import numpy as np
import pytest

from services.bench import real_data
from services.bench.encoder import real_speech_per
from services.bench.phonetics import symbol_labels, transcript_labels
from services.common.audio import to_analysis_rate
from services.encoder.units import speech_labels

needs_real = pytest.mark.skipif(not real_data.available(), reason=real_data.SKIPPED)


@pytest.fixture(scope="module")
def content_model():
    from services.encoder.service import EncoderService

    return EncoderService().content_model


def test_symbol_labels_drop_stress_length_gaps_and_punctuation():
    assert symbol_labels(["^", "h", "ə", "l", "ˈ", "o", "ʊ", "ː", " ", "w", ",", "$"]) == \
        ["h", "ə", "l", "o", "ʊ", "w"]


@pytest.mark.parametrize("text, lang", [
    ("Please call Stella.", "en"),
    ("The ticket costs $42.50, due 12/03/2026.", "en"),  # normalised before phonemising
    ("这个东西多少钱？我们明天见。", "zh"),
])
def test_transcript_labels_equal_the_labels_of_the_same_text_spoken(tts, text, lang):
    assert transcript_labels(tts, text, lang) == speech_labels(tts.synthesize(text, lang))


def test_per_against_a_transcript_is_low_on_speech_the_model_knows(tts, content_model):
    text = 'The only "ism" Hollywood believes in is plagiarism.'  # from the training text source
    other = "Six spoons of fresh snow peas, five thick slabs of blue cheese, and maybe a snack for her brother Bob."
    clip = to_analysis_rate(tts.synthesize(text, "en").audio)
    out = real_speech_per(content_model, tts, [real_data.RealUtterance("tts", text, "en", clip)])
    wrong = real_speech_per(content_model, tts, [real_data.RealUtterance("tts", other, "en", clip)])
    assert out["clips"] == 1 and out["per_clip"]["tts"] == out["per"] < 0.5 < wrong["per"]


def test_real_data_absent_is_reported(tmp_path, monkeypatch):
    monkeypatch.setenv("TALKING_HEAD_REAL_MEDIA", str(tmp_path))
    assert not real_data.available()
    from services.bench.denoise import real_section

    assert real_section(None) == real_data.SKIPPED


@needs_real
def test_real_speech_loads_at_16k_with_normalised_transcripts():
    utts = real_data.speech()
    assert [u.id for u in utts][-1] == "voicebank_p232_001" and len(utts) >= 2
    assert all(u.audio.sample_rate == 16_000 and u.audio.duration > 1.0 and u.text for u in utts)
    lj7 = next(u for u in utts if u.id == "LJ001-0007")
    assert "fourteen fifty-five" in lj7.text and "1455" not in lj7.text
    noisy, clean = real_data.voicebank_pair()
    assert len(noisy) == len(clean) and noisy.dtype == np.float32


@needs_real
def test_per_on_a_real_recording(tts, content_model):
    utts = [u for u in real_data.speech() if u.id in ("LJ001-0002", "voicebank_p232_001")]
    out = real_speech_per(content_model, tts, utts)
    assert out["clips"] == 2 and set(out["per_clip"]) == {"LJ001-0002", "voicebank_p232_001"}
    assert 0.0 <= out["per"] <= 1.5 and out["per_lj_speech"] == out["per_clip"]["LJ001-0002"]
