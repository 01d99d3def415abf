"""English text → the words a person would say (cardinals and ordinals from num2words).

House style (American reading, for the bundled US voice):

- Numbers: "one hundred five", "one thousand two hundred thirty-four" (no "and" inside a
  number, no commas: "and" is kept for joining dollars and cents); decimals digit by digit
  after "point" ("three point one four"); negatives with "minus"; ranges with "to"
  ("5-10" → "five to ten"); numbers with a leading zero or of 16+ digits digit by digit.
- Money: "$42.50" → "forty-two dollars and fifty cents", "$42.00" → "forty-two dollars",
  "$0.99" → "ninety-nine cents", "$2.5M" → "two point five million dollars", "$5-10" →
  "five to ten dollars". € euros/cents, £ pounds/pence, ₹ rupees/paise; ¥ is yen in English
  and yen, yuan (元, RMB, CNY) and won have no minor unit ("forty-two point five yuan").
  ISO codes work either side of the amount ("USD 5", "5 EUR").
- Dates: "December third, twenty twenty-six" for 2026-12-03, 12/03/2026 (month/day, unless
  the first number cannot be a month), "Dec 3, 2026"; day-first "3 December 2026" →
  "the third of December twenty twenty-six". Years after "in", "since", "by"... are read as
  years; decades "1990s" → "nineteen nineties".
- Times: "three thirty PM", "three PM", "three oh five", "three o'clock", 24-hour
  "fifteen forty-five", "fifteen hundred".
- Phone numbers: digit by digit ("zero", not "oh"), groups as written, commas between
  groups: "one, eight zero zero, five five five, zero one nine nine".
- Codes and order ids: letters spelled as capitals, digits one by one, commas between the
  dash-separated groups: "#A12-3456" → "A-one two, three four five six" (a lone "A" is
  joined to what follows, or the voice reads it as the article).
- E-mail: "support at example dot com"; URLs: the host without scheme or "www" ("example
  dot com"), plus the path when it is short ("slash help"), else the host alone.
- Abbreviations: Mr. Mister, Mrs. Missus, Ms. Miz, Dr. Doctor (before a name) or Drive,
  St. Saint (before a name) or Street; a period that also ends the sentence is kept.
- Units after a number: "5 GB" → "five gigabytes", "1 km" → "one kilometer", "20°C" →
  "twenty degrees Celsius".
"""

from __future__ import annotations

import re

from num2words import num2words

from services.tts.normalize.patterns import (
    CLOCK_ONE,
    CLOCK_RANGE,
    DASH,
    EMAIL,
    ISO_DATE,
    MINUS,
    NUM,
    PHONE,
    SLASH_DATE,
    URL,
    Piece,
    email_pieces,
    ends_sentence,
    full_year,
    month_day,
    parse_clock,
    phone_groups,
    split_url_trail,
    url_pieces,
)

DIGITS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August",
          "September", "October", "November", "December")
_MONTH_ABBR = {m[:3]: i + 1 for i, m in enumerate(MONTHS)} | {"Sept": 9}
_MONTH_NAME = "|".join(sorted([*MONTHS, *_MONTH_ABBR], key=len, reverse=True))
_WEEKDAYS = {"Mon": "Monday", "Tue": "Tuesday", "Tues": "Tuesday", "Wed": "Wednesday",
             "Thu": "Thursday", "Thur": "Thursday", "Thurs": "Thursday", "Fri": "Friday",
             "Sat": "Saturday", "Sun": "Sunday"}


def cardinal(n: int) -> str:
    if n < 0:
        return f"minus {cardinal(-n)}"
    return _american(num2words(n))


def ordinal(n: int) -> str:
    return _american(num2words(n, to="ordinal"))


def year(n: int) -> str:
    return _american(num2words(n, to="year"))


def _american(words: str) -> str:
    return words.replace(",", "").replace(" and ", " ")


def digits(text: str) -> str:
    return " ".join(DIGITS[int(d)] for d in text if d.isdigit())


def number(text: str) -> str:
    """A written number ("1,234.5", ".5", "007") in words."""
    text = text.replace(",", "")
    whole, _, frac = text.partition(".")
    if whole and (len(whole) >= 16 or (len(whole) > 1 and whole[0] == "0")):
        head = digits(whole)
    else:
        head = cardinal(int(whole)) if whole else ""
    if frac:
        return f"{head} point {digits(frac)}".strip()
    return head


def _plural(word: str) -> str:
    return word[:-1] + "ies" if word.endswith("y") else word + "s"


# ---- money ------------------------------------------------------------------------------

# code → (one, many, minor one, minor many); no minor unit: the amount is read as a decimal.
_CURRENCIES: dict[str, tuple[str, str, str | None, str | None]] = {
    "USD": ("dollar", "dollars", "cent", "cents"),
    "EUR": ("euro", "euros", "cent", "cents"),
    "GBP": ("pound", "pounds", "penny", "pence"),
    "INR": ("rupee", "rupees", "paisa", "paise"),
    "CAD": ("Canadian dollar", "Canadian dollars", "cent", "cents"),
    "AUD": ("Australian dollar", "Australian dollars", "cent", "cents"),
    "HKD": ("Hong Kong dollar", "Hong Kong dollars", "cent", "cents"),
    "CHF": ("Swiss franc", "Swiss francs", None, None),
    "JPY": ("yen", "yen", None, None),
    "CNY": ("yuan", "yuan", None, None),
    "KRW": ("won", "won", None, None),
}
_SYMBOLS = {"US$": "USD", "$": "USD", "C$": "CAD", "A$": "AUD", "HK$": "HKD", "€": "EUR",
            "£": "GBP", "¥": "JPY", "￥": "JPY", "₹": "INR", "₩": "KRW", "元": "CNY"}
_CODE_ALIASES = {"RMB": "CNY"}
_SCALES = {"thousand": "thousand", "million": "million", "billion": "billion",
           "trillion": "trillion", "k": "thousand", "K": "thousand", "M": "million",
           "m": "million", "bn": "billion", "B": "billion"}
_CODES = "|".join([*_CURRENCIES, "RMB"])
_SYM = "|".join(re.escape(s) for s in sorted(_SYMBOLS, key=len, reverse=True))
_SCALE = r"(?:\s?(thousand|million|billion|trillion|bn|[kKMmB])\b)?"
_MONEY_BEFORE = re.compile(
    rf"({MINUS})?(?:({_SYM})|\b({_CODES})\s?)\s?({NUM})(?:\s*{DASH}\s*(?:{_SYM})?\s?({NUM}))?{_SCALE}")
_MONEY_AFTER = re.compile(
    rf"({MINUS})?(?<![\w.,])({NUM})(?:\s*{DASH}\s*({NUM}))?{_SCALE}\s?(?:({_SYM})|({_CODES})\b|(¢))")


def money(amount: str, code: str, scale: str | None = None) -> str:
    one, many, minor_one, minor_many = _CURRENCIES[code]
    amount = amount.replace(",", "")
    if scale:
        return f"{number(amount)} {_SCALES[scale]} {many}"
    whole_s, _, frac = amount.partition(".")
    whole = int(whole_s or 0)
    if minor_one is None or len(frac) > 2:
        amount = amount.rstrip("0").rstrip(".") if minor_one is None and "." in amount else amount
        return f"{number(amount)} {one if amount == '1' else many}"
    cents = int(frac.ljust(2, "0")) if frac else 0
    parts = []
    if whole or not cents:
        parts.append(f"{cardinal(whole)} {one if whole == 1 else many}")
    if cents:
        parts.append(f"{cardinal(cents)} {minor_one if cents == 1 else minor_many}")
    return " and ".join(parts)


def _money_range(neg: str | None, a: str, b: str | None, code: str, scale: str | None) -> str:
    sign = "minus " if neg else ""
    if b is None:
        return sign + money(a, code, scale)
    if scale or ("." not in a and "." not in b):
        many = _CURRENCIES[code][1]
        return f"{sign}{number(a)} to {number(b)}{' ' + _SCALES[scale] if scale else ''} {many}"
    return f"{sign}{money(a, code)} to {money(b, code)}"


def _money_before(m: re.Match[str]) -> str:
    neg, sym, code, a, b, scale = m.groups()
    return _money_range(neg, a, b, _SYMBOLS[sym] if sym else _CODE_ALIASES.get(code, code), scale)


def _money_after(m: re.Match[str]) -> str:
    neg, a, b, scale, sym, code, cent = m.groups()
    if cent:
        n = number(a) if b is None else f"{number(a)} to {number(b)}"
        return f"{'minus ' if neg else ''}{n} {'cent' if a == '1' and b is None else 'cents'}"
    return _money_range(neg, a, b, _SYMBOLS[sym] if sym else _CODE_ALIASES.get(code, code), scale)


# ---- units, percentages -----------------------------------------------------------------

_UNITS: dict[str, tuple[str, str]] = {
    "TB": ("terabyte", "terabytes"), "GB": ("gigabyte", "gigabytes"),
    "MB": ("megabyte", "megabytes"), "KB": ("kilobyte", "kilobytes"), "kB": ("kilobyte", "kilobytes"),
    "Gbps": ("gigabit per second", "gigabits per second"),
    "Mbps": ("megabit per second", "megabits per second"),
    "GHz": ("gigahertz", "gigahertz"), "MHz": ("megahertz", "megahertz"), "kHz": ("kilohertz", "kilohertz"),
    "Hz": ("hertz", "hertz"),
    "km/h": ("kilometer per hour", "kilometers per hour"), "kph": ("kilometer per hour", "kilometers per hour"),
    "mph": ("mile per hour", "miles per hour"),
    "km": ("kilometer", "kilometers"), "cm": ("centimeter", "centimeters"),
    "mm": ("millimeter", "millimeters"), "m": ("meter", "meters"),
    "kg": ("kilogram", "kilograms"), "mg": ("milligram", "milligrams"), "g": ("gram", "grams"),
    "lbs": ("pound", "pounds"), "lb": ("pound", "pounds"), "oz": ("ounce", "ounces"),
    "ft": ("foot", "feet"), "mi": ("mile", "miles"),
    "ml": ("milliliter", "milliliters"), "mL": ("milliliter", "milliliters"), "L": ("liter", "liters"),
    "kWh": ("kilowatt hour", "kilowatt hours"), "kW": ("kilowatt", "kilowatts"),
    "V": ("volt", "volts"), "mAh": ("milliamp hour", "milliamp hours"),
    "ms": ("millisecond", "milliseconds"), "sec": ("second", "seconds"), "min": ("minute", "minutes"),
    "hrs": ("hour", "hours"), "hr": ("hour", "hours"), "h": ("hour", "hours"),
    "°C": ("degree Celsius", "degrees Celsius"), "℃": ("degree Celsius", "degrees Celsius"),
    "°F": ("degree Fahrenheit", "degrees Fahrenheit"), "℉": ("degree Fahrenheit", "degrees Fahrenheit"),
    "°": ("degree", "degrees"), "%": ("percent", "percent"),
}
_UNIT = "|".join(re.escape(u) for u in sorted(_UNITS, key=len, reverse=True))
_QUANTITY = re.compile(
    rf"({MINUS})?(?<![\w.,])({NUM})(?:\s?%?\s*{DASH}\s*({MINUS})?({NUM}))?\s?({_UNIT})(?![\w°/])")


def _quantity(m: re.Match[str]) -> str:
    neg, a, neg_b, b, unit = m.groups()
    one, many = _UNITS[unit]
    first = ("minus " if neg else "") + number(a)
    if b is None:
        return f"{first} {one if a == '1' and not neg else many}"
    return f"{first} to {'minus ' if neg_b else ''}{number(b)} {many}"


# ---- dates and times --------------------------------------------------------------------

def _date(month: int, day: int, yr: int | None) -> str:
    words = f"{MONTHS[month - 1]} {ordinal(day)}"
    return f"{words}, {year(yr)}" if yr is not None else words


def _iso_date(m: re.Match[str]) -> str:
    y, mo, d = (int(g) for g in m.groups())
    if not (1 <= mo <= 12 and 1 <= d <= 31):
        return m.group()
    return _date(mo, d, y)


def _slash_date(m: re.Match[str]) -> str:
    md = month_day(int(m.group(1)), int(m.group(2)))
    if md is None:
        return m.group()
    return _date(*md, full_year(m.group(3)))


def _month_of(name: str) -> int:
    return MONTHS.index(name) + 1 if name in MONTHS else _MONTH_ABBR[name]


_MONTH_DAY = re.compile(
    rf"\b({_MONTH_NAME})\b\.?\s+(\d{{1,2}})(?:st|nd|rd|th)?\b(?:,?\s+(\d{{4}})\b)?(?![\d:.,]\d)")
_DAY_MONTH = re.compile(
    rf"(?<![\w.,])(\d{{1,2}})(?:st|nd|rd|th)?\s+(?:of\s+)?({_MONTH_NAME})\b\.?(?:,?\s+(\d{{4}})\b)?")
_MONTH_YEAR = re.compile(rf"\b({_MONTH_NAME})\b\.?,?\s+(\d{{4}})\b")
_WEEKDAY = re.compile(rf"\b({'|'.join(sorted(_WEEKDAYS, key=len, reverse=True))})\b\.?(?=,?\s+(?:{_MONTH_NAME}|\d))")
_SHORT_DATE = re.compile(r"\b(on|by|before|after|until|from|since|due)\s+(\d{1,2})/(\d{1,2})(?![\w/]|\.\d)")
_YEAR = re.compile(r"\b(in|since|by|from|until|till|before|after|during|of|year|circa|around|to|and)"
                   r"\s+(1[1-9]\d\d|20\d\d)(?![\w.,]\d|\w)", re.IGNORECASE)
_DECADE = re.compile(r"(?<![\w.,])'?(\d{2}|\d{4})s\b")


def _month_day(m: re.Match[str]) -> str:
    d = int(m.group(2))
    if not 1 <= d <= 31:
        return m.group()
    return _date(_month_of(m.group(1)), d, int(m.group(3)) if m.group(3) else None)


def _day_month(m: re.Match[str]) -> str:
    d = int(m.group(1))
    if not 1 <= d <= 31:
        return m.group()
    the = "" if re.search(r"\bthe\s+$", m.string[:m.start()], re.IGNORECASE) else "the "
    words = f"{the}{ordinal(d)} of {MONTHS[_month_of(m.group(2)) - 1]}"
    return f"{words} {year(int(m.group(3)))}" if m.group(3) else words


def _short_date(m: re.Match[str]) -> str:
    md = month_day(int(m.group(2)), int(m.group(3)))
    return m.group() if md is None else f"{m.group(1)} {_date(*md, None)}"


def _decade(m: re.Match[str]) -> str:
    n = int(m.group(1))
    if n % 10:
        return m.group()
    words = year(n) if len(m.group(1)) == 4 else cardinal(n)
    return _plural(words)


def clock(text: str) -> str | None:
    c = parse_clock(text)
    if c is None:
        return None
    hour = c.hour
    if c.meridiem is None and hour == 0:
        hour, meridiem = 12, "AM"
    else:
        meridiem = c.meridiem
    words = cardinal(hour)
    if c.minute == 0 and c.second is None:
        if meridiem is None:
            words += " hundred" if hour > 12 else " o'clock"
    elif c.minute < 10:
        words += f" oh {DIGITS[c.minute]}"
    else:
        words += f" {cardinal(c.minute)}"
    if c.second is not None:
        words += f" and {cardinal(c.second)} {'second' if c.second == 1 else 'seconds'}"
    if meridiem:
        words += f" {meridiem}"
    return words


def _keep_stop(m: re.Match[str], words: str) -> str:
    return words + "." if m.group().endswith(".") and ends_sentence(m) else words


def _clock_range(m: re.Match[str]) -> str:
    left, right = re.split(rf"\s*{DASH}\s*", m.group(), maxsplit=1)
    a, b = clock(left), clock(right)
    return m.group() if a is None or b is None else _keep_stop(m, f"{a} to {b}")


def _clock_one(m: re.Match[str]) -> str:
    words = clock(m.group())
    return m.group() if words is None else _keep_stop(m, words)


# ---- addresses, phone numbers, codes ----------------------------------------------------

_SPEAKABLE = frozenset({"co", "me", "go", "to", "do", "my", "we", "us"})


def _label(word: str) -> str:
    """Spell a short or vowel-less label ("uk", "bbc"); read anything else as a word."""
    if (len(word) <= 2 and word.lower() not in _SPEAKABLE) or not re.search(r"[aeiouy]", word, re.IGNORECASE):
        return " ".join(word.upper())
    return word.lower()


def _read_pieces(pieces: list[Piece]) -> str:
    return " ".join(_label(p.text) if p.kind == "word" else digits(p.text) if p.kind == "digits"
                    else p.kind for p in pieces)


def _email(m: re.Match[str]) -> str:
    return _read_pieces(email_pieces(m.group()))


def _url(m: re.Match[str]) -> str:
    core, trail = split_url_trail(m.group())
    return _read_pieces(url_pieces(core)) + trail


def _phone(m: re.Match[str]) -> str:
    plus, groups = phone_groups(m.group())
    return ("plus " if plus else "") + ", ".join(digits(g) for g in groups)


def spell_code(code: str) -> str:
    """Letters as capitals, digits one by one, dash-separated groups apart by commas; runs of
    four or more letters with a vowel ("SAVE20", "COVID-19") and mixed-case words of three
    or more ("iPhone") stay words, which the voice reads or spells itself."""
    groups = []
    for group in filter(None, re.split(r"[-/]", code)):
        items: list[str] = []
        for run in re.findall(r"[A-Za-z]+|\d+", group):
            if run.isdigit():
                items += [DIGITS[int(d)] for d in run]
            elif len(run) <= 2 or (run.isupper() and (len(run) <= 3 or not re.search("[AEIOUY]", run))):
                items += list(run.upper())
            else:
                items.append(run)
        text = ""
        for i, item in enumerate(items):
            text += item + ("" if i == len(items) - 1 else "-" if item == "A" else " ")
        groups.append(text)
    return ", ".join(groups)


_HASH_NUMBER = re.compile(r"#(\d{1,3})(?![\w-])")
_HASH_CODE = re.compile(r"#([A-Za-z0-9]+(?:-[A-Za-z0-9]+)*)")
_CODE = re.compile(r"(?<![\w.-])(?=[A-Za-z0-9-]*\d)(?=[A-Za-z0-9-]*[A-Za-z])[A-Za-z0-9]+(?:-[A-Za-z0-9]+)*(?![\w-])")
_ID_DIGITS = re.compile(
    r"\b((?:order|account|ticket|reference|ref|tracking|confirmation|invoice|case|booking|pin|code|"
    r"id|ID|member|customer)(?:\s+(?:number|no\.?|id|ID))?[:\s]\s*)(\d{4,})\b", re.IGNORECASE)


# ---- abbreviations ----------------------------------------------------------------------

_TITLES = {"Mr": "Mister", "Mrs": "Missus", "Ms": "Miz", "Prof": "Professor", "Capt": "Captain",
           "Rev": "Reverend", "Sgt": "Sergeant", "Gen": "General", "Gov": "Governor", "Sen": "Senator"}
_TITLE = re.compile(rf"\b(Mr|Mrs|Ms|Prof)(?=\s+[A-Z])|\b({'|'.join(_TITLES)})\.")
# Abbreviations before what they qualify: the period goes.
_PREFIXES = {"Mt": "Mount", "Ste": "Suite", "Apt": "Apartment", "approx": "approximately",
             "vs": "versus", "ext": "extension", "tel": "telephone", "Tel": "telephone"}
_PREFIX = re.compile(rf"\b({'|'.join(_PREFIXES)})\.")
# Abbreviations after a name: the period may also end the sentence.
_SUFFIXES = {"Jr": "Junior", "Sr": "Senior", "Ave": "Avenue", "Rd": "Road", "Blvd": "Boulevard",
             "Ln": "Lane", "Hwy": "Highway", "Inc": "Incorporated", "Ltd": "Limited",
             "Corp": "Corporation", "Co": "Company", "Dept": "Department", "etc": "et cetera"}
_SUFFIX = re.compile(rf"\b({'|'.join(_SUFFIXES)})\.")
_LATIN = re.compile(r"\b(e\.g|i\.e|a\.k\.a)\.(,?)", re.IGNORECASE)
_LATIN_WORDS = {"e.g": "for example", "i.e": "that is", "a.k.a": "also known as"}
_NO = re.compile(r"\b[Nn]o\.\s?#?(?=\d)")
_DR = re.compile(r"\bDr\.|\bDr\b(?=\s+[A-Z])")
_ST = re.compile(r"\bSt\.|\bSt\b(?=\s+[A-Z])")
_WORD_BEFORE = re.compile(r"(\S+)\s+$")


def _before(m: re.Match[str]) -> str:
    w = _WORD_BEFORE.search(m.string[:m.start()])
    return w.group(1) if w else ""


def _after_is_name(m: re.Match[str]) -> bool:
    return re.match(r"\s+[A-Z][a-z]", m.string[m.end():]) is not None


def _place_word(before: str) -> bool:
    """Does the word before name a place (a number, ordinal or a capitalised name that
    does not start its sentence)?"""
    if re.fullmatch(r"\d+(?:st|nd|rd|th)?|[A-Z][\w'-]*", before) is None:
        return False
    return before[0].isdigit() or before not in ("", "The")


def _dr(m: re.Match[str]) -> str:
    if _after_is_name(m) or not _place_word(_before(m)):
        return "Doctor"
    return _keep_stop(m, "Drive")


def _st(m: re.Match[str]) -> str:
    before = _before(m)
    starts = re.search(r"(?:^|[.!?]\s+)\S+\s+$", m.string[:m.start()]) is not None
    if _place_word(before) and not (starts and _after_is_name(m) and not before[0].isdigit()):
        return _keep_stop(m, "Street")
    return "Saint" if _after_is_name(m) else _keep_stop(m, "Street")


def _abbreviations(text: str) -> str:
    text = _LATIN.sub(lambda m: _LATIN_WORDS[m.group(1).lower()] + m.group(2), text)
    text = _TITLE.sub(lambda m: _TITLES[m.group(1) or m.group(2)], text)
    text = _DR.sub(_dr, text)
    text = _ST.sub(_st, text)
    text = _NO.sub("number ", text)
    text = _PREFIX.sub(lambda m: _PREFIXES[m.group(1)], text)
    return _SUFFIX.sub(lambda m: _keep_stop(m, _SUFFIXES[m.group(1)]), text)


# ---- the rest ---------------------------------------------------------------------------

_DOTTED = re.compile(r"(?<![\w.])([vV](?=\d))?(\d+(?:\.\d+)+)(?![\w]|\.\d)")
_TIMES = re.compile(r"(?<![\w.])(\d+(?:\.\d+)?)[xX×](?![\w])")


def _dotted(m: re.Match[str]) -> str:
    """v2.0 → "version two point zero"; 1.2.3 → "one point two point three"; an IPv4
    address → "one nine two dot one six eight..." (part by part)."""
    version, body = m.groups()
    parts = body.split(".")
    if version is None and len(parts) == 2:  # a plain decimal: ranges and numbers read it
        return m.group()
    if version is None and len(parts) == 4 and all(int(p) <= 255 for p in parts):
        return " dot ".join(digits(p) for p in parts)
    return ("version " if version else "") + " point ".join(number(p) for p in parts)


_FRACTIONS = {2: ("half", "halves"), 4: ("quarter", "quarters")}
_FRACTION = re.compile(r"(?<![\w/.,])(\d{1,3})/(\d{1,3})(?![\w/]|[.,]\d)")
_ORDINAL = re.compile(r"(?<![\w.,])(\d+)(?:st|nd|rd|th)\b", re.IGNORECASE)
_ORDINAL_RANGE = re.compile(rf"{_ORDINAL.pattern}\s*{DASH}\s*(\d+)(?:st|nd|rd|th)\b", re.IGNORECASE)
_RANGE = re.compile(rf"(?<![\w.,-])({NUM})\s*{DASH}\s*({NUM})(?![\w-]|[.,]\d)")
_NEGATIVE = re.compile(rf"{MINUS}(?=\.?\d)")
_NUMBER = re.compile(rf"(?<![\w.])({NUM})(?!\w)")
_OPERATORS = [(re.compile(r"(?<=\d)\s*\+\s*(?=\d)"), " plus "), (re.compile(r"(?<=\d)\s*=\s*(?=\d)"), " equals "),
              (re.compile(r"(?<=\d)\s*[x×]\s*(?=\d)"), " by "), (re.compile(r"\s*&\s*"), " and "),
              (re.compile(r"~\s*(?=\d)"), "about "), (re.compile(r"(?<=\s)@(?=\s)"), "at")]


def _fraction(m: re.Match[str]) -> str:
    a, b = int(m.group(1)), int(m.group(2))
    if (a, b) == (24, 7):
        return "twenty-four seven"
    if 0 < a < b < 10:
        one, many = _FRACTIONS.get(b, (ordinal(b), _plural(ordinal(b))))
        return f"{cardinal(a)} {one if a == 1 else many}"
    if b in (5, 10, 100) and a <= b:
        return f"{cardinal(a)} out of {cardinal(b)}"
    if 1 <= a <= 12 and 13 <= b <= 31:  # only a month/day can be this
        return _date(a, b, None)
    return f"{number(m.group(1))} slash {number(m.group(2))}"


def normalize_en(text: str) -> str:
    """English text with every number, symbol and abbreviation written as spoken words."""
    text = EMAIL.sub(_email, text)
    text = URL.sub(_url, text)
    text = _abbreviations(text)
    text = PHONE.sub(_phone, text)
    text = ISO_DATE.sub(_iso_date, text)
    text = SLASH_DATE.sub(_slash_date, text)
    text = _WEEKDAY.sub(lambda m: _WEEKDAYS[m.group(1)], text)
    text = _MONTH_DAY.sub(_month_day, text)
    text = _DAY_MONTH.sub(_day_month, text)
    text = _MONTH_YEAR.sub(lambda m: f"{MONTHS[_month_of(m.group(1)) - 1]} {year(int(m.group(2)))}", text)
    text = _SHORT_DATE.sub(_short_date, text)
    text = CLOCK_RANGE.sub(_clock_range, text)
    text = CLOCK_ONE.sub(_clock_one, text)
    text = _MONEY_BEFORE.sub(_money_before, text)
    text = _MONEY_AFTER.sub(_money_after, text)
    text = _QUANTITY.sub(_quantity, text)
    text = _YEAR.sub(lambda m: f"{m.group(1)} {year(int(m.group(2)))}", text)
    text = _DECADE.sub(_decade, text)
    text = _ORDINAL_RANGE.sub(lambda m: f"{ordinal(int(m.group(1)))} to {ordinal(int(m.group(2)))}", text)
    text = _ORDINAL.sub(lambda m: ordinal(int(m.group(1))), text)
    text = _DOTTED.sub(_dotted, text)
    text = _TIMES.sub(lambda m: f"{number(m.group(1))} times", text)
    text = _HASH_NUMBER.sub(lambda m: f"number {cardinal(int(m.group(1)))}", text)
    text = _HASH_CODE.sub(lambda m: spell_code(m.group(1)), text)
    text = _ID_DIGITS.sub(lambda m: m.group(1) + digits(m.group(2)), text)
    for pattern, words in _OPERATORS:
        text = pattern.sub(words, text)
    text = _CODE.sub(lambda m: spell_code(m.group()), text)
    text = _FRACTION.sub(_fraction, text)
    text = _RANGE.sub(lambda m: f"{number(m.group(1))} to {number(m.group(2))}", text)
    text = _NEGATIVE.sub("minus ", text)
    text = _NUMBER.sub(lambda m: number(m.group(1)), text)
    return re.sub(r"\d+", lambda m: number(m.group()), text)
