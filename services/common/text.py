"""Text checks shared by every entry point: the TTS stage, the pipeline and the servers.

One hard cap and one language list live here, so a request is judged by the same numbers
whichever door it comes through; servers may lower the cap (`Limits`), never raise it.
"""

from __future__ import annotations

import re
import unicodedata

from services.common.errors import InvalidInput

#: Longest text any entry point accepts (about two minutes of speech).
MAX_TEXT_CHARS = 2_000
LANGUAGES = ("en", "zh")


def check_language(lang: str) -> str:
    if lang not in LANGUAGES:
        raise InvalidInput(f"unknown language {lang!r}: choose one of {', '.join(LANGUAGES)}")
    return lang


def normalize_text(text: str) -> str:
    """NFC-normalise, drop control characters and collapse whitespace; full-width CJK
    punctuation is kept (NFKC would turn it into ASCII and change sentence splitting)."""
    text = unicodedata.normalize("NFC", text)
    text = "".join(ch for ch in text if unicodedata.category(ch)[0] != "C" or ch in "\n\t")
    return re.sub(r"[ \t\r\f\v]+", " ", text).strip()


def check_text(text: object, lang: str, max_chars: int = MAX_TEXT_CHARS,
               too_long: type[Exception] = InvalidInput) -> str:
    """The normalised text, or one clear error: a bad language, not a string, over `max_chars`
    (raised as `too_long`: servers answer RESOURCE_EXHAUSTED), nothing to say."""
    check_language(lang)
    if not isinstance(text, str):
        raise InvalidInput("text must be a string")
    if len(text) > max_chars:
        raise too_long(f"text is {len(text)} characters; the limit is {max_chars}")
    norm = normalize_text(text)
    if not any(ch.isalnum() for ch in norm):
        raise InvalidInput("text is empty: give at least one word to say")
    return norm
