"""Pinyin vocabulary reduction on real hanzi."""

import numpy as np
import pytest

from services.encoder.pinyin import (ZERO_INITIAL, PinyinReducer, char_readings, common_hanzi,
                                     is_character_vocab, reduced_units, text_units)
from services.encoder.units import BLANK, DIGIT, LATIN, SPACE, UNK


@pytest.fixture(scope="module")
def common_reducer():
    vocab = ["<pad>", "<s>", "</s>", "<unk>", "|", "a", "hello", "7", "，"] + common_hanzi()
    return PinyinReducer(vocab, blank_id=0)


def _syllables(units):
    return [tuple(units[i:i + 3]) for i in range(0, len(units), 3)]


@pytest.mark.parametrize("text,char_pos,expected", [
    ("银行", 1, ("h-", "-ang", "T2")), ("行走", 0, ("x-", "-ing", "T2")),
    ("长城", 0, ("ch-", "-ang", "T2")), ("长大", 0, ("zh-", "-ang", "T3")),
    ("重要", 0, ("zh-", "-ong", "T4")), ("重新", 0, ("ch-", "-ong", "T2")),
])
def test_polyphones_read_in_context(text, char_pos, expected):
    assert _syllables(text_units(text))[char_pos] == expected


def test_polyphone_rows_keep_every_common_reading(common_reducer):
    units = common_reducer.units
    vocab_index = {t: i for i, t in enumerate(common_reducer.vocab)}
    for ch, initials in [("行", ("x-", "h-")), ("长", ("zh-", "ch-")), ("重", ("zh-", "ch-"))]:
        row = common_reducer.matrix[vocab_index[ch]]
        for ini in initials:
            assert row[units.index(ini)] > 0.01, (ch, ini)
        assert abs(row.sum() - 1) < 1e-5
    weights = dict(char_readings("长"))
    assert set(weights) == {"zhang3", "chang2"} and abs(sum(weights.values()) - 1) < 1e-9


def test_common_hanzi_reduce_to_at_most_100_units(common_reducer):
    assert len(common_hanzi()) >= 3000
    assert len(common_reducer.units) <= 100
    used = common_reducer.used_units()
    assert 60 <= len(used) <= 100
    assert "zh-" in used and "-iong" in used and ZERO_INITIAL in used and "T5" in used


def test_reduced_posteriors_sum_to_one_per_frame(common_reducer):
    rng = np.random.default_rng(0)
    post = rng.dirichlet(np.full(len(common_reducer.vocab), 0.05), size=40)
    reduced = common_reducer(post)
    assert reduced.shape == (40, len(common_reducer.units))
    np.testing.assert_allclose(reduced.sum(1), 1.0, atol=1e-5)
    assert (reduced >= 0).all()


def test_special_tokens_are_explicit(common_reducer):
    units = common_reducer.units
    m, index = common_reducer.matrix, {t: i for i, t in enumerate(common_reducer.vocab)}
    expect = {"<pad>": BLANK, "|": SPACE, "，": SPACE, "a": LATIN, "hello": LATIN, "7": DIGIT,
              "<s>": UNK, "<unk>": UNK}
    for token, unit in expect.items():
        assert m[index[token], units.index(unit)] == 1.0, token


def test_a_hanzi_splits_its_mass_over_initial_final_and_tone(common_reducer):
    units = common_reducer.units
    row = common_reducer.matrix[common_reducer.vocab.index("好")]  # hao3 (also hao4)
    assert row[units.index("h-")] == pytest.approx(1 / 3, abs=1e-5)
    assert row[units.index("-ao")] == pytest.approx(1 / 3, abs=1e-5)
    assert row[units.index("T3")] + row[units.index("T4")] == pytest.approx(1 / 3, abs=1e-5)
    row = common_reducer.matrix[common_reducer.vocab.index("爱")]  # ai4: zero initial
    assert row[units.index(ZERO_INITIAL)] == pytest.approx(1 / 3, abs=1e-5)


def test_character_vocab_detection():
    assert is_character_vocab(["<pad>"] + common_hanzi()[:200])
    assert not is_character_vocab(["<pad>", "a", "b", "ɹ", "zh-", "-ang"])
    assert len(reduced_units()) == len(set(reduced_units())) == 72
