import numpy as np
import pytest

from services.common.errors import InvalidInput, NotFound
from services.tts.pinyin_phonemes import text_to_syllables
from services.common.text import MAX_TEXT_CHARS, check_text
from services.tts.text import split_sentences
from services.tts.timings import symbols_to_timings

VOWELS = set("aeiouɑɔəɛɪʊʌæɚɜ")


def _check_tiling(speech):
    ph = speech.phonemes
    assert ph[0].start == 0.0
    assert ph[-1].end == pytest.approx(speech.audio.duration, abs=1e-9)
    for a, b in zip(ph, ph[1:]):
        assert a.end == pytest.approx(b.start) and a.end > a.start


def _energy(speech, label_filter):
    x, sr = speech.audio.samples, speech.audio.sample_rate
    parts = [x[int(p.start * sr):int(p.end * sr)] for p in speech.phonemes if label_filter(p.phoneme)]
    joined = np.concatenate(parts)
    return float(np.sqrt(np.mean(joined ** 2)))


def test_english_timings_tile_audio_and_line_up_with_energy(tts):
    speech = tts.synthesize("The quick brown fox jumps over the lazy dog.", "en")
    assert speech.audio.sample_rate == 22_050 and speech.audio.duration > 1.5
    _check_tiling(speech)
    labels = [p.phoneme for p in speech.phonemes]
    assert labels[0] == "sil" and labels[-1] == "sil"
    assert {"k", "w", "b", "f", "d", "ɡ"} <= set(labels)
    # Vowels are loud, leading/trailing silence is quiet: the timings follow the audio.
    assert _energy(speech, lambda s: s in VOWELS) > 4 * _energy(speech, lambda s: s == "sil")


def test_mandarin_has_pinyin_syllables_with_timings(tts):
    speech = tts.synthesize("你好，欢迎光临。", "zh")
    _check_tiling(speech)
    syl = [s.phoneme for s in speech.syllables if s.phoneme != "sil"]
    assert syl == ["ni3", "hao3", "huan1", "ying2", "guang1", "lin2"]
    assert speech.syllables[-1].end == pytest.approx(speech.audio.duration)
    voiced = [s for s in speech.syllables if s.phoneme != "sil"]
    assert _energy(speech, lambda s: s in VOWELS) > 4 * _energy(speech, lambda s: s == "sil")
    assert all(s.end > s.start for s in voiced)


def test_sentences_stream_one_by_one_and_concatenate(tts):
    from services.common.types import SynthesisOptions

    steady = SynthesisOptions(noise_scale=0.0, noise_w_scale=0.0)  # no sampling noise: repeatable
    parts = list(tts.sentences("Hello there! How are you today? Fine.", "en", options=steady))
    assert [p.sentence for p in parts] == [0, 1, 2]
    whole = tts.synthesize("Hello there! How are you today? Fine.", "en", options=steady)
    assert whole.audio.duration == pytest.approx(sum(p.audio.duration for p in parts))
    _check_tiling(whole)


@pytest.mark.parametrize("text,lang,err,msg", [
    ("", "en", InvalidInput, "empty"),
    ("   ...  ", "en", InvalidInput, "empty"),
    ("x" * (MAX_TEXT_CHARS + 1), "en", InvalidInput, "limit"),
    ("hello", "fr", InvalidInput, "unknown language"),
])
def test_bad_text(tts, text, lang, err, msg):
    with pytest.raises(err, match=msg):
        tts.synthesize(text, lang)


def test_unknown_voice(tts):
    with pytest.raises(NotFound, match="unknown voice"):
        tts.synthesize("hello", "en", voice="nobody")


def test_zh_without_hanzi_is_rejected(tts):
    with pytest.raises(InvalidInput, match="Mandarin"):
        tts.synthesize("hello world", "zh")


def test_split_sentences():
    assert split_sentences("Hello! How can I help you today? It costs 3.5 dollars.") == [
        "Hello!", "How can I help you today?", "It costs 3.5 dollars."]
    assert split_sentences("Mr. Smith went home. Bye") == ["Mr. Smith went home.", "Bye"]
    assert split_sentences("你好，欢迎光临。我们走吧！") == ["你好，欢迎光临。", "我们走吧！"]
    assert check_text("  a\tb  ", "en") == "a b"


def test_pinyin_polyphones_follow_context():
    syl = [s.pinyin for s in text_to_syllables("银行行长很重视，他长高了。") if not isinstance(s, str)]
    assert syl == ["yin2", "hang2", "hang2", "zhang3", "hen3", "zhong4", "shi4", "ta1", "zhang3", "gao1", "le5"]


def test_symbol_timings_merge_marks_and_cover_samples():
    t = symbols_to_timings(["^", "h", "ˈ", "a", "ː", " ", "$"], [100, 50, 20, 80, 30, 10, 60], 1000)
    assert [x.phoneme for x in t] == ["sil", "h", "a", " ", "sil"]
    assert t[2].end - t[2].start == pytest.approx(0.130)  # stress + vowel + length mark
    assert t[-1].end == pytest.approx(0.350)


def test_the_prepared_voice_is_kept_in_the_cache_directory(tmp_path, monkeypatch):
    """The first voice load writes the alignment-patched, optimised model there; the next
    loads it as a file, and both give phoneme alignments."""
    from services.tts import piper_backend

    monkeypatch.setenv("TALKING_HEAD_HOME", str(tmp_path))
    monkeypatch.setenv(piper_backend.VOICE_CACHE_ENV, "on")
    first = piper_backend.PiperBackend()
    cached = list((tmp_path / "cache" / "voices").glob("*.onnx"))
    assert len(cached) == 1 and cached[0].stat().st_size > 10_000_000
    second = piper_backend.PiperBackend()
    assert list((tmp_path / "cache" / "voices").iterdir()) == cached
    for backend in (first, second):
        chunk = next(iter(backend._voice.synthesize("Hello there.", include_alignments=True)))
        assert chunk.phoneme_alignments
    monkeypatch.setenv(piper_backend.VOICE_CACHE_ENV, "off")
    assert isinstance(piper_backend._voice_model(piper_backend._bundled_voice()[0]), bytes)
