"""Unit names, CTC decoding and the phone error rate."""

from services.encoder.units import ctc_greedy, edit_distance, phone_error_rate, split_syllable, syllable_units


def test_edit_distance_and_per():
    assert edit_distance(list("abc"), list("abc")) == 0
    assert edit_distance(list("abc"), list("axcd")) == 2
    assert phone_error_rate([(list("abcd"), list("abd")), (list("xy"), list("xy"))]) == 1 / 6


def test_ctc_greedy_collapses_repeats_and_drops_blanks():
    vocab = ["<blank>", "a", "b"]
    assert ctc_greedy([0, 1, 1, 0, 1, 2, 2, 0], vocab) == ["a", "a", "b"]


def test_syllable_units():
    assert split_syllable("zhang3") == ("zh", "ang", 3)
    assert split_syllable("you3") == ("", "iou", 3)
    assert syllable_units("lve4") == ["l-", "-ve", "T4"]
    assert syllable_units("ai4", tones=False) == ["-ai"]
