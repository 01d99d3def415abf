"""What English and Mandarin normalisation share: the patterns of numbers, phone numbers,
dates, clock times, e-mail addresses and URLs, how an address splits into readable pieces,
and the removal of pictographs and leftover symbols. Each language module turns the
pieces into its own words."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

#: A number as written: thousands separators, decimals, or a bare ".5".
NUM = r"(?:\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?|\.\d+)"
#: Range dashes: hyphen, en dash, em dash.
DASH = r"[-–—]"
#: A minus sign where it cannot be a range dash (start, after a space or bracket).
MINUS = r"(?:(?<![A-Za-z0-9_.,)\]])[-−])"

# Pictographs: emoji and other symbols (So), emoji skin tones (Sk in 1F3FB..1F3FF),
# variation selectors and the keycap mark. Degree signs are units, so they stay.
_KEEP_SYMBOLS = frozenset("°℃℉")
_PICTO_EXTRA = re.compile("[\ufe00-\ufe0f\u20e3\U0001f3fb-\U0001f3ff\U000e0020-\U000e007f\u200d]")

# Boundaries are ASCII: Python counts hanzi as word characters, and 拨打800-555-0199 or
# 下午3:30 must still match.
_W = "A-Za-z0-9_"

# The North American plan (1-800-555-0199, (800) 555-0199, +1 800 555 0199) and any
# international number written with a leading "+".
PHONE = re.compile(
    rf"(?<![{_W}+])(?:(?:\+?1[\s.-]?)?(?:\(\d{{3}}\)\s?|\d{{3}}[\s.-])\d{{3}}[\s.-]\d{{4}}"
    rf"|\+\d{{1,3}}(?:[\s.-]?\(?\d{{1,5}}\)?){{2,5}})(?![{_W}-])")

ISO_DATE = re.compile(rf"(?<![{_W}./-])(\d{{4}})[-/](\d{{1,2}})[-/](\d{{1,2}})(?![{_W}/-]|\.\d)")
#: Month/day/year, US order; "13/03/2026" can only be day/month and is read so.
SLASH_DATE = re.compile(rf"(?<![{_W}./-])(\d{{1,2}})/(\d{{1,2}})/(\d{{4}}|\d{{2}})(?![{_W}/-]|\.\d)")

#: A clock time: 3:30, 15:45:10, 3:30 pm, 3:30 p.m., 3 PM.
_MERIDIEM = r"(?:\s*([AaPp])\.?\s?[Mm](?![A-Za-z])\.?)"
CLOCK = (rf"(?:(\d{{1,2}}):([0-5]\d)(?::([0-5]\d))?{_MERIDIEM}?"
         rf"|(\d{{1,2}}){_MERIDIEM})")
CLOCK_FULL = re.compile(CLOCK)
CLOCK_RANGE = re.compile(rf"(?<![{_W}.:]){CLOCK}\s*{DASH}\s*{CLOCK}(?![{_W}:])")
CLOCK_ONE = re.compile(rf"(?<![{_W}.:]){CLOCK}(?![{_W}:])")

EMAIL = re.compile(rf"(?<![{_W}.+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{{2,}}(?![A-Za-z])")
_TLDS = ("com|org|net|edu|gov|io|ai|co|uk|us|de|fr|cn|jp|info|biz|app|dev|me|tv|ly|ca|au|in|"
         "eu|nl|ru|es|it|ch|se|no")
_URL_CHARS = r"[A-Za-z0-9\-._~:/?#@!$&*+,;=%()\[\]]"
URL = re.compile(
    rf"(?:(?<![{_W}])(?:https?://|www\.){_URL_CHARS}+"
    rf"|(?<![{_W}@./-])(?:[A-Za-z0-9-]+\.)+(?:{_TLDS})(?![{_W}-])(?:/{_URL_CHARS}*)?)",
    re.IGNORECASE)
_URL_TRAIL = ".,;:!?)]"
#: Paths longer than this (or with more segments) are left out: the host is read alone.
_MAX_PATH_CHARS, _MAX_PATH_SEGMENTS = 24, 2


@dataclass(frozen=True)
class Clock:
    hour: int
    minute: int
    second: int | None
    meridiem: str | None  # "AM", "PM" or None


def parse_clock(text: str) -> Clock | None:
    """A clock time from one CLOCK match's text, or None if it is not a valid time."""
    m = CLOCK_FULL.fullmatch(text.strip())
    if m is None:
        return None
    h, mi, s, ap1, h2, ap2 = m.groups()
    hour = int(h if h is not None else h2)
    minute = int(mi) if mi is not None else 0
    ap = ap1 or ap2
    meridiem = None if ap is None else ("AM" if ap.lower() == "a" else "PM")
    if hour > 23 or (meridiem and not 1 <= hour <= 12):
        return None
    return Clock(hour, minute, int(s) if s is not None else None, meridiem)


def ends_sentence(m: re.Match[str]) -> bool:
    """Does a sentence end right after this match (end of text, or a capitalised word)?
    An abbreviation's period that doubles as the full stop must then be kept."""
    return re.match(r"\s*$|\s+[\"'(]?[A-Z]", m.string[m.end():]) is not None


def month_day(first: int, second: int) -> tuple[int, int] | None:
    """(month, day) of a slashed date, US order unless only day/month is possible."""
    if 1 <= first <= 12 and 1 <= second <= 31:
        return first, second
    if 1 <= second <= 12 and 1 <= first <= 31:
        return second, first
    return None


def full_year(text: str) -> int:
    """A two-digit year is 2000-2049 or 1950-1999."""
    y = int(text)
    if len(text) == 2:
        y += 2000 if y < 50 else 1900
    return y


def phone_groups(text: str) -> tuple[bool, list[str]]:
    """(has a leading plus, the digit groups as written)."""
    return text.lstrip().startswith("+"), re.findall(r"\d+", text)


@dataclass(frozen=True)
class Piece:
    """One readable piece of an address: kind is "word", "digits" or a separator
    ("dot", "at", "dash", "underscore", "plus", "slash")."""

    kind: str
    text: str


_SEPARATORS = {".": "dot", "@": "at", "-": "dash", "_": "underscore", "+": "plus", "/": "slash"}
_ADDRESS_TOKEN = re.compile(r"[A-Za-z]+|\d+|[.@_+/-]")


def _pieces(text: str, slug: bool = False) -> list[Piece]:
    out = []
    for tok in _ADDRESS_TOKEN.findall(text):
        if tok[0].isalpha():
            out.append(Piece("word", tok))
        elif tok[0].isdigit():
            out.append(Piece("digits", tok))
        elif not (slug and tok in "-_"):  # a slug's hyphens are word gaps, not spoken
            out.append(Piece(_SEPARATORS[tok], tok))
    return out


def email_pieces(text: str) -> list[Piece]:
    return _pieces(text)


def url_pieces(text: str) -> list[Piece]:
    """The host without scheme or "www.", then the path when it is short; query strings,
    fragments and long paths are left out (a listener cannot use them)."""
    rest = re.sub(r"^(?:https?://)?(?:www\.)?", "", text, flags=re.IGNORECASE)
    host, _, path = rest.partition("/")
    host = host.split(":")[0].lower()
    out = _pieces(host)
    segments = [s for s in path.split("/") if s]
    short = (not re.search(r"[?#=&%]", path) and len(segments) <= _MAX_PATH_SEGMENTS
             and len(path) <= _MAX_PATH_CHARS)
    if short:
        for seg in segments:
            out.append(Piece("slash", "/"))
            out.extend(_pieces(seg.rsplit(".", 1)[0] if "." in seg else seg, slug=True))
    return out


def split_url_trail(text: str) -> tuple[str, str]:
    """A URL match and the sentence punctuation that follows it, apart."""
    core = text.rstrip(_URL_TRAIL)
    return core, text[len(core):]


def drop_pictographs(text: str) -> str:
    """Emoji and other pictographic symbols become spaces; punctuation stays."""
    text = _PICTO_EXTRA.sub("", text)
    return "".join(" " if unicodedata.category(ch) == "So" and ch not in _KEEP_SYMBOLS else ch
                   for ch in text)


def drop_symbols(text: str) -> str:
    """Symbols nobody reads aloud (math, currency, modifier, other; # * _ | ~ ^ ` < > = @ \\ /)
    become spaces."""
    return "".join(" " if unicodedata.category(ch)[0] == "S" or ch in "#*_|~^`<>=@\\/" else ch
                   for ch in text)


def tidy(text: str) -> str:
    """Collapse spaces, no space before punctuation, no doubled commas."""
    text = re.sub(r"[ \t]+", " ", text)
    text = re.sub(r" +([,.!?;:，。！？；：、])", r"\1", text)
    text = re.sub(r"([,，])(?:\s*[,，])+", r"\1", text)
    text = re.sub(r"^[\s,，]+|[\s,，]+$", "", text)
    text = re.sub(r"(?m)^[ ,，]+|[ ]+$", "", text)
    return text
