"""Text-source benchmark: how much language each source of training and held-out text holds.

Per text source (natural sentences, templates), language and split: sentences, distinct
words (English: lower-cased letter runs; Mandarin: jieba-free, so distinct hanzi and
distinct toneless syllables), sentences with digits, and phonetic coverage:
- English: the TTS front end's phones (services/bench/phonetics.py) against the CMU
  Pronouncing Dictionary's 39 phones (each spelled by its espeak IPA; a phone counts as
  covered when one of its spellings occurs), and distinct phone pairs.
- Mandarin: pypinyin's 21 initials and the 36 finals in common use (ê, m, n, ng, the rare
  syllabic ones, left out), and distinct toneless syllables.

No audio is made: the phones come from phonemising text, so the whole pools are counted.
"""

from __future__ import annotations

import json
import re
from collections import Counter

from services.bench.common import header
from services.bench.phonetics import transcript_labels
from services.common.corpus import LANGS, SPLITS, TEXT_SOURCES, pool, sentences
from services.common.pinyin_phones import PinyinSyllable
from services.encoder.units import PINYIN_FINALS, PINYIN_INITIALS, split_syllable
from services.tts.normalize import normalize
from services.tts.pinyin_phonemes import text_to_syllables

#: CMU phone → its spellings in espeak's en-us IPA as the TTS labels them (one symbol each).
CMU_PHONES: dict[str, tuple[tuple[str, ...], ...]] = {
    "AA": (("ɑ",),), "AE": (("æ",),), "AH": (("ʌ",), ("ə",), ("ɐ",)), "AO": (("ɔ",),),
    "AW": (("a", "ʊ"),), "AY": (("a", "ɪ"),), "B": (("b",),), "CH": (("t", "ʃ"),), "D": (("d",),),
    "DH": (("ð",),), "EH": (("ɛ",),), "ER": (("ɚ",), ("ɜ",)), "EY": (("e", "ɪ"),), "F": (("f",),),
    "G": (("ɡ",),), "HH": (("h",),), "IH": (("ɪ",), ("ᵻ",)), "IY": (("i",),), "JH": (("d", "ʒ"),),
    "K": (("k",),), "L": (("l",),), "M": (("m",),), "N": (("n",),), "NG": (("ŋ",),),
    "OW": (("o", "ʊ"),), "OY": (("ɔ", "ɪ"),), "P": (("p",),), "R": (("ɹ",),), "S": (("s",),),
    "SH": (("ʃ",),), "T": (("t",),), "TH": (("θ",),), "UH": (("ʊ",),), "UW": (("u",),),
    "V": (("v",),), "W": (("w",),), "Y": (("j",),), "Z": (("z",),), "ZH": (("ʒ",),),
}
_CMU_PAIRS = {s for spellings in CMU_PHONES.values() for s in spellings if len(s) == 2}
COMMON_FINALS = tuple(f for f in PINYIN_FINALS if f not in ("ê", "m", "n", "ng"))
_HANZI = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff]")
TEMPLATE_SAMPLE = 2000


def english_stats(texts: list[str], tts) -> dict:
    words = Counter(w.lower() for t in texts for w in re.findall(r"[A-Za-z]+(?:'[a-z]+)?", t))
    phones: Counter = Counter()
    pairs: set[tuple[str, str]] = set()
    for t in texts:
        seq = transcript_labels(tts, t, "en")
        phones.update(seq)
        pairs.update(zip(seq, seq[1:]))
        phones.update(f"{a} {b}" for a, b in zip(seq, seq[1:]) if (a, b) in _CMU_PAIRS)
    covered = sorted(c for c, spellings in CMU_PHONES.items() if any(phones[" ".join(s)] for s in spellings))
    return {"distinct_words": len(words), "cmu_phones_covered": len(covered), "cmu_phones": len(CMU_PHONES),
            "cmu_phones_missing": sorted(set(CMU_PHONES) - set(covered)),
            "distinct_phone_pairs": len(pairs)}



def mandarin_stats(texts: list[str]) -> dict:
    hanzi = {h for t in texts for h in _HANZI.findall(t)}
    initials, finals, syllables = set(), set(), set()
    for t in texts:
        for s in text_to_syllables(normalize(t, "zh")):
            if isinstance(s, PinyinSyllable):
                i, f, _ = split_syllable(s.pinyin)
                initials.add(i)
                finals.add(f)
                syllables.add(s.pinyin.rstrip("012345"))
    return {"distinct_hanzi": len(hanzi), "distinct_syllables": len(syllables),
            "initials_covered": len(initials & set(PINYIN_INITIALS)), "initials": len(PINYIN_INITIALS),
            "finals_covered": len(finals & set(COMMON_FINALS)), "finals": len(COMMON_FINALS),
            "finals_missing": sorted(set(COMMON_FINALS) - finals)}


def source_texts(source: str, lang: str, split: str) -> list[str]:
    """The whole natural pool; a seeded sample of the (unbounded) template grammar."""
    return list(pool(lang, split)) if source == "natural" else \
        sentences(TEMPLATE_SAMPLE, lang, seed=0, split=split, source=source)


def run(json_path: str | None = None, quick: bool = False) -> dict:
    from services.tts.service import TtsService

    tts = TtsService()
    result = header("corpus")
    for source in TEXT_SOURCES:
        result[source] = {}
        for lang in LANGS:
            for split in SPLITS:
                texts = source_texts(source, lang, split)
                if quick:
                    texts = texts[:300]
                stats = {"sentences": len(texts), "distinct_sentences": len(set(texts)),
                         "with_digits": sum(bool(re.search(r"\d", t)) for t in texts),
                         "mean_length": round(sum(len(t.split()) if lang == "en" else len(_HANZI.findall(t))
                                                  for t in texts) / max(1, len(texts)), 1)}
                stats.update(english_stats(texts, tts) if lang == "en" else mandarin_stats(texts))
                result[source][f"{lang}_{split}"] = stats
    if json_path:
        with open(json_path, "w") as f:
            json.dump(result, f, indent=2)
    return result
