"""Sentence splitting shared by every TTS backend (text checks: services.common.text)."""

from __future__ import annotations

import re

# A sentence ends at . ! ? (and their full-width forms) or ; followed by space/end,
# or at a line break. Decimal points ("3.5") and abbreviations followed by a lower-case
# word ("e.g. this") do not end a sentence.
_SENTENCE_END = re.compile(r"(?<=[。！？；!?;])|(?<=\.)(?=\s+[^a-z\s])|(?<=\.)$|\n+")
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
