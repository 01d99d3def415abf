"""Text checks and sentence splitting shared by every TTS backend."""

from __future__ import annotations

import re
import unicodedata

from services.common.errors import InvalidInput

MAX_TEXT_CHARS = 5_000
LANGUAGES = ("en", "zh")

# A sentence ends at . ! ? (and their full-width forms) or ; followed by space/end,
# or at a line break. Decimal points ("3.5") and abbreviations followed by a lower-case
# word ("e.g. this") do not end a sentence.
_SENTENCE_END = re.compile(r"(?<=[。！？；!?;])|(?<=\.)(?=\s+[^a-z\s])|(?<=\.)$|\n+")


def normalize_text(text: str) -> str:
    """NFKC-normalise and collapse whitespace; keeps full-width CJK punctuation."""
    text = unicodedata.normalize("NFC", text)
    text = "".join(ch for ch in text if unicodedata.category(ch)[0] != "C" or ch in "\n\t")
    return re.sub(r"[ \t\r\f\v]+", " ", text).strip()


def validate_text(text: str, lang: str) -> str:
    """Return the normalised text or raise InvalidInput with one clear line."""
    if lang not in LANGUAGES:
        raise InvalidInput(f"unknown language {lang!r}: choose one of {', '.join(LANGUAGES)}")
    if not isinstance(text, str):
        raise InvalidInput("text must be a string")
    if len(text) > MAX_TEXT_CHARS:
        raise InvalidInput(f"text is {len(text)} characters; the limit is {MAX_TEXT_CHARS}")
    norm = normalize_text(text)
    if not any(ch.isalnum() for ch in norm):
        raise InvalidInput("text is empty: give at least one word to say")
    return norm


_ABBREVIATIONS = {"mr.", "mrs.", "ms.", "dr.", "st.", "prof.", "jr.", "sr.", "vs.", "etc.", "no.", "inc."}


def split_sentences(text: str) -> list[str]:
    """Split text into sentences so the first can be synthesised before the rest."""
    sentences: list[str] = []
    for part in (p.strip() for p in _SENTENCE_END.split(text)):
        if not part:
            continue
        if sentences and sentences[-1].split()[-1].lower() in _ABBREVIATIONS:
            sentences[-1] = f"{sentences[-1]} {part}"
        else:
            sentences.append(part)
    return [s for s in sentences if any(ch.isalnum() for ch in s)]
