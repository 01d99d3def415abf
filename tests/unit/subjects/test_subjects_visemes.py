"""Visemes: phoneme timings → smooth mouth opening and rounding."""

from __future__ import annotations

import numpy as np

from services.common.types import AudioClip, PhonemeTiming, Speech
from services.subjects.visemes import (ipa_viseme, mouth_track, pinyin_units, rest_share, speech_mouth_track,
                                      speech_units)


def _timings(labels: list[tuple[str, float]]) -> list[PhonemeTiming]:
    out, t = [], 0.0
    for label, dur in labels:
        out.append(PhonemeTiming(label, t, t + dur))
        t += dur
    return out


def test_open_vowel_opens_and_bilabial_closes() -> None:
    units = _timings([("sil", 0.3), ("m", 0.08), ("ɑ", 0.2), ("p", 0.08), ("ɑ", 0.2), ("sil", 0.3)])
    centres = np.array([(u.start + u.end) / 2 for u in units])
    opening, _ = mouth_track(units, centres)
    assert opening[2] > 0.6 and opening[4] > 0.6
    assert opening[1] < 0.2 and opening[3] < 0.2  # m, p close the lips between the vowels
    assert opening[0] < 0.1 and opening[5] < 0.1


def test_rest_share_is_silence_not_closure() -> None:
    units = _timings([("sil", 0.3), ("m", 0.08), ("ɑ", 0.2), ("p", 0.08), ("ɑ", 0.2), ("sil", 0.3)])
    centres = np.array([(u.start + u.end) / 2 for u in units])
    share = rest_share(units, np.concatenate([[-0.5, 2.0], centres]))
    assert share[0] > 0.99 and share[1] > 0.99  # before and after the speech
    assert share[2] > 0.8 and share[7] > 0.8  # the silences
    assert share[3] < 0.1 and share[5] < 0.1  # /m/, /p/ close the lips: sounds, not the rest
    assert share[4] < 0.1 and share[6] < 0.1  # the vowels
    assert rest_share([], np.zeros(3)).tolist() == [1.0, 1.0, 1.0]


def test_rounding_and_smoothness() -> None:
    units = _timings([("sil", 0.2), ("u", 0.2), ("i", 0.2), ("sil", 0.2)])
    t = np.arange(0, 0.8, 0.01)
    opening, rounding = mouth_track(units, t)
    assert rounding[30] > 0.6 and rounding[50] < 0.25
    assert np.abs(np.diff(opening)).max() < 0.15 and np.abs(np.diff(rounding)).max() < 0.15
    assert opening.min() >= 0 and opening.max() <= 1


def test_labels_with_marks_and_unknowns() -> None:
    assert ipa_viseme("ˈɑː") == ipa_viseme("ɑ")
    assert ipa_viseme("tʃ").round > 0.4
    assert 0 <= ipa_viseme("☃").open <= 1


def test_pinyin_units_and_fallback() -> None:
    units = pinyin_units("hang2")
    assert [u for u, _ in units] == ["h", "ɑ", "ŋ"] and abs(sum(s for _, s in units) - 1) < 1e-9
    assert [u for u, _ in pinyin_units("zhi1")] == ["ʂ", "ɚ"]
    assert [u for u, _ in pinyin_units("lv4")] == ["l", "y"]
    # a Speech with only syllable timings still drives the mouth
    syl = _timings([("sil", 0.2), ("ma1", 0.3), ("sil", 0.2)])
    speech = Speech(AudioClip(np.zeros(11200, np.float32), 16000), [PhonemeTiming("sil", 0, 0.7)], "妈", "zh",
                    "test", syllables=syl)
    assert [u.phoneme for u in speech_units(speech)] == ["sil", "m", "a", "sil"]
    opening, _ = speech_mouth_track(speech, 17, 25)
    assert opening.max() > 0.5 and opening[0] < 0.1
