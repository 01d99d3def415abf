"""Phonetic units of the content path: names, label sequences from TTS timings, PER.

Unit spelling (one namespace for both languages, no clashes):
- English: IPA phonemes as the TTS timings label them ("ɹ", "eɪ" split as "e", "ɪ", ...).
- Mandarin pinyin: initials end with a hyphen ("zh-", "b-"), finals start with one
  ("-ang", "-v" for ü, "-i" also for the apical vowel), tones are "T1".."T5".
Special tokens: "<blank>" (CTC blank, id 0), "<space>", "<latin>", "<digit>", "<unk>".
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from services.common.types import Speech

BLANK = "<blank>"
SPACE = "<space>"
LATIN = "<latin>"
DIGIT = "<digit>"
UNK = "<unk>"
SILENCE_LABELS = {"sil", " ", ""}

#: pypinyin's strict initials (REFERENCE.md §6).
PINYIN_INITIALS = ("b", "p", "m", "f", "d", "t", "n", "l", "g", "k", "h", "j", "q", "x",
                   "zh", "ch", "sh", "r", "z", "c", "s")
#: pypinyin's 37 finals (ü written v) plus the syllabic nasals of 嗯/呣/哼 (n, m, ng).
PINYIN_FINALS = ("i", "u", "v", "a", "ia", "ua", "o", "uo", "e", "ie", "ve", "ai", "uai", "ei", "uei",
                 "ao", "iao", "ou", "iou", "an", "ian", "uan", "van", "en", "in", "uen", "vn", "ang",
                 "iang", "uang", "eng", "ing", "ueng", "ong", "iong", "er", "ê", "m", "n", "ng")
PINYIN_TONES = (1, 2, 3, 4, 5)


def pinyin_units(tones: bool = True) -> list[str]:
    """All pinyin units in a fixed order: initials, finals, then tones."""
    units = [initial_unit(i) for i in PINYIN_INITIALS] + [final_unit(f) for f in PINYIN_FINALS]
    return units + ([tone_unit(t) for t in PINYIN_TONES] if tones else [])


def initial_unit(initial: str) -> str:
    return f"{initial}-"


def final_unit(final: str) -> str:
    return f"-{final}"


def tone_unit(tone: int) -> str:
    return f"T{tone}"


def is_pinyin_unit(unit: str) -> bool:
    return unit.endswith("-") or unit.startswith("-") or (len(unit) == 2 and unit[0] == "T" and unit[1].isdigit())


def split_syllable(tone3: str) -> tuple[str, str, int]:
    """'zhang3' → ('zh', 'ang', 3); neutral tone is 5; syllabic nasals keep their letters as final."""
    tone = int(tone3[-1]) if tone3[-1:].isdigit() else 5
    # Imported here: pypinyin loads in ~0.3 s
    from pypinyin.contrib.tone_convert import to_finals, to_initials

    bare = tone3.rstrip("012345").lower().replace("ü", "v")
    initial = to_initials(bare, strict=True) or ""
    final = to_finals(bare, strict=True) or ""
    if not final:  # m, n, ng, hm, hng: no final in pypinyin's tables
        initial, final = ("h", bare[1:]) if bare.startswith("h") and len(bare) > 1 else ("", bare)
    return initial, final, tone


def syllable_units(tone3: str, tones: bool = True) -> list[str]:
    initial, final, tone = split_syllable(tone3)
    units = ([initial_unit(initial)] if initial else []) + [final_unit(final)]
    return units + ([tone_unit(tone)] if tones else [])


#: Share of a Mandarin syllable's duration given to its initial in frame targets (the TTS
#: times whole syllables; initials are the short consonantal onset).
INITIAL_SHARE = 0.3


def speech_spans(speech: Speech, tones: bool = False) -> list[tuple[str, float, float]]:
    """(unit, start s, end s) for every unit of a TTS utterance, silences left out.

    English: the IPA phonemes with their TTS times. Mandarin: pinyin initials and finals;
    the syllable's time is split INITIAL_SHARE / rest between them (tones span the final).
    Tones are off by default for the bundled voice: it speaks Mandarin with English
    phonemes and does not voice tones, so a model could not learn them from its audio.
    """
    if speech.lang != "zh":
        return [(p.phoneme, p.start, p.end) for p in speech.phonemes if p.phoneme not in SILENCE_LABELS]
    out: list[tuple[str, float, float]] = []
    for syl in speech.syllables:
        if syl.phoneme in SILENCE_LABELS:
            continue
        units = syllable_units(syl.phoneme, tones)
        cut = syl.start + INITIAL_SHARE * (syl.end - syl.start) if units[0].endswith("-") else syl.start
        for unit in units:
            out.append((unit, syl.start, cut) if unit.endswith("-") else (unit, cut, syl.end))
    return out


def speech_labels(speech: Speech, tones: bool = False) -> list[str]:
    """Target unit sequence of a TTS utterance: IPA phonemes (en) or pinyin units (zh)."""
    return [unit for unit, _, _ in speech_spans(speech, tones)]


def language_units(vocab: Sequence[str], lang: str) -> list[int]:
    """Token ids a language may emit: blank plus its own units (pinyin for zh, the rest for en)."""
    ids = [0]
    for i, unit in enumerate(vocab):
        if i == 0 or unit.startswith("<"):
            continue
        if is_pinyin_unit(unit) == (lang == "zh"):
            ids.append(i)
    return ids


def edit_distance(ref: Sequence[str], hyp: Sequence[str]) -> int:
    prev = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        cur = [i] + [0] * len(hyp)
        for j, h in enumerate(hyp, 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (r != h))
        prev = cur
    return prev[-1]


def phone_error_rate(pairs: Iterable[tuple[Sequence[str], Sequence[str]]]) -> float:
    """Σ edit distance / Σ reference length over (reference, hypothesis) pairs."""
    errors = total = 0
    for ref, hyp in pairs:
        errors += edit_distance(ref, hyp)
        total += len(ref)
    return errors / max(total, 1)


def ctc_greedy(ids: Sequence[int], vocab: Sequence[str], blank: int = 0) -> list[str]:
    """Collapse repeats, drop blanks."""
    out, prev = [], None
    for i in ids:
        if i != prev and i != blank:
            out.append(vocab[i])
        prev = i
    return out
