"""Mandarin text → what a person would say, written in characters (numbers from cn2an).

The Mandarin front end (`services.tts.pinyin_phonemes`) reads hanzi, pinyin with tone
digits and capital Latin letters (by their letter names); it cannot read Arabic digits or
English words. So every number becomes characters:

- Numbers: "42" → 四十二, "2000" → 两千 (两 before 千/万/亿, and for a lone 2 before a
  measure word: 两个, 两点), decimals with 点 (三点一四), negatives with 负, ranges with 到.
- Money: "¥42.50" / "42.50元" → 四十二点五元 (trailing zeros of the decimal dropped),
  $ 美元, € 欧元, £ 英镑, HK$ 港元, JPY 日元; ISO codes either side of the amount.
- Percent: 50% → 百分之五十. Dates: 2026年12月3日, 2026-12-03 and 12/03/2026 (month/day)
  → 二零二六年十二月三日 (the year digit by digit). Times: 3:30 → 三点三十分, 15:05 → 十五点零五分,
  3:00 → 三点, with am/pm → 上午/下午 in front.
- Phone numbers and codes: digit by digit (1 as 一, or 幺 with `yao=True`), groups apart by
  "，"; a code's letters stay capitals, which the front end reads by name. Pinyin syllables
  with tone digits ("ni3") are left as written.
- Units after a number: 公里, 公斤, 厘米, 摄氏度, 英里每小时; GB/MB stay letters (said "G B").
- E-mail and URLs: @ 艾特, . 点, / 斜杠, - 杠, _ 下划线, digits as characters; Latin words
  stay as written (the Mandarin voice has no English reading).
"""

from __future__ import annotations

import re

from services.tts.normalize.patterns import (
    CLOCK_ONE,
    CLOCK_RANGE,
    DASH,
    EMAIL,
    ISO_DATE,
    MINUS,
    PHONE,
    SLASH_DATE,
    URL,
    Piece,
    email_pieces,
    full_year,
    month_day,
    parse_clock,
    phone_groups,
    split_url_trail,
    url_pieces,
)

_DIGITS = str.maketrans("0123456789", "零一二三四五六七八九")
_YAO = str.maketrans("一", "幺")
# ASCII-only boundaries: Python counts hanzi as \w, and 价格42元 has a number in it.
_B = r"(?<![A-Za-z0-9.])"
_E = r"(?![A-Za-z0-9])"
_NUM = r"(?:\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?)"


def digits(text: str, yao: bool = False) -> str:
    out = re.sub(r"\D", "", text).translate(_DIGITS)
    return out.translate(_YAO) if yao else out


def integer(n: int) -> str:
    # Imported here: English text needs none of it
    import cn2an

    words = cn2an.an2cn(str(n))
    return re.sub(r"^(负?)二(?=[千万亿])", r"\1两", words)


def number(text: str) -> str:
    """A written number ("1,234.5", "007") in characters."""
    text = text.replace(",", "")
    whole, _, frac = text.partition(".")
    if len(whole) > 12 or (len(whole) > 1 and whole[0] == "0"):
        head = digits(whole)
    else:
        head = integer(int(whole or 0))
    return f"{head}点{digits(frac)}" if frac else head


def _amount(text: str) -> str:
    """A sum of money: trailing zeros of the decimal are not said (42.50 → 四十二点五)."""
    text = text.replace(",", "")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return number(text)


# ---- money, percent, units --------------------------------------------------------------

_SYMBOLS = {"¥": "元", "￥": "元", "$": "美元", "US$": "美元", "HK$": "港元", "€": "欧元", "£": "英镑",
            "₹": "卢比", "₩": "韩元", "円": "日元"}
_CODES = {"CNY": "元", "RMB": "元", "USD": "美元", "EUR": "欧元", "GBP": "英镑", "JPY": "日元",
          "HKD": "港元", "INR": "卢比", "KRW": "韩元", "CAD": "加元", "AUD": "澳元", "CHF": "瑞士法郎"}
_WORDS = ("元", "块钱", "块", "美元", "欧元", "英镑", "日元", "港元", "人民币")
_SYM = "|".join(re.escape(s) for s in sorted(_SYMBOLS, key=len, reverse=True))
_CODE = "|".join(_CODES)
_SCALES = {"万": "万", "亿": "亿", "千": "千", "k": "千", "K": "千", "M": "百万"}
_SCALE = r"(?:\s?(万|亿|千|[kKM])(?![A-Za-z]))?"
_MONEY_BEFORE = re.compile(
    rf"({MINUS})?(?:({_SYM})|(?<![A-Za-z])({_CODE})\s?)\s?({_NUM})(?:\s*{DASH}\s*(?:{_SYM})?\s?({_NUM}))?{_SCALE}")
_MONEY_AFTER = re.compile(
    rf"({MINUS})?{_B}({_NUM})(?:\s*{DASH}\s*({_NUM}))?{_SCALE}\s?(?:({'|'.join(_WORDS)})|({_CODE}){_E})")


def _money(neg: str | None, a: str, b: str | None, scale: str | None, unit: str) -> str:
    words = ("负" if neg else "") + ("两" if a == "2" and b is None and not scale else _amount(a))
    if b is not None:
        words += f"到{_amount(b)}"
    return words + (_SCALES[scale] if scale else "") + unit


def _money_before(m: re.Match[str]) -> str:
    neg, sym, code, a, b, scale = m.groups()
    return _money(neg, a, b, scale, _SYMBOLS[sym] if sym else _CODES[code])


def _money_after(m: re.Match[str]) -> str:
    neg, a, b, scale, word, code = m.groups()
    return _money(neg, a, b, scale, word if word else _CODES[code])


_PERCENT = re.compile(rf"({MINUS})?{_B}({_NUM})\s?[%％]?(?:\s*{DASH}\s*({_NUM}))?\s?([%％‰])")

_UNITS = {
    "km/h": "公里每小时", "kph": "公里每小时", "mph": "英里每小时", "km": "公里", "cm": "厘米",
    "mm": "毫米", "m": "米", "kg": "公斤", "mg": "毫克", "g": "克", "lb": "磅", "lbs": "磅",
    "ml": "毫升", "mL": "毫升", "L": "升", "kWh": "千瓦时", "kW": "千瓦", "W": "瓦", "mAh": "毫安时",
    "GHz": "吉赫", "MHz": "兆赫", "Hz": "赫兹", "ms": "毫秒", "s": "秒", "min": "分钟", "h": "小时",
    "°C": "摄氏度", "℃": "摄氏度", "°F": "华氏度", "℉": "华氏度", "°": "度",
    "TB": "TB", "GB": "GB", "MB": "MB", "KB": "KB",
}
_UNIT = "|".join(re.escape(u) for u in sorted(_UNITS, key=len, reverse=True))
_QUANTITY = re.compile(rf"({MINUS})?{_B}({_NUM})(?:\s*{DASH}\s*({_NUM}))?\s?({_UNIT})(?![A-Za-z°/])")


def _percent(m: re.Match[str]) -> str:
    neg, a, b, sign = m.groups()
    head = "百分之" if sign != "‰" else "千分之"
    words = ("负" if neg else "") + head + number(a)
    return words + (f"到{head}{number(b)}" if b else "")


# Measures said with 两 for a lone 2 (两公里, 两小时); degrees and bytes keep 二.
_LIANG_UNITS = frozenset({"公里", "公斤", "厘米", "毫米", "米", "克", "磅", "升", "毫升", "小时", "分钟", "秒",
                          "毫秒", "千瓦", "瓦"})


def _quantity(m: re.Match[str]) -> str:
    neg, a, b, unit = m.groups()
    first = "两" if a == "2" and not neg and not b and _UNITS[unit] in _LIANG_UNITS else number(a)
    words = ("负" if neg else "") + first + (f"到{number(b)}" if b else "")
    return words + _UNITS[unit]


# ---- dates and times --------------------------------------------------------------------

def _date(y: int | None, mo: int, d: int) -> str:
    head = f"{digits(str(y))}年" if y is not None else ""
    return f"{head}{integer(mo)}月{integer(d)}日"


def _iso_date(m: re.Match[str]) -> str:
    y, mo, d = (int(g) for g in m.groups())
    return _date(y, mo, d) if 1 <= mo <= 12 and 1 <= d <= 31 else m.group()


def _slash_date(m: re.Match[str]) -> str:
    md = month_day(int(m.group(1)), int(m.group(2)))
    return m.group() if md is None else _date(full_year(m.group(3)), *md)


_YEAR = re.compile(rf"{_B}(\d{{4}})(?=\s?年)")


def clock(text: str) -> str | None:
    c = parse_clock(text)
    if c is None:
        return None
    hour = c.hour
    prefix = {"AM": "上午", "PM": "下午"}.get(c.meridiem or "", "")
    words = prefix + ("两" if hour == 2 else integer(hour)) + "点"
    if c.minute:
        words += ("零" if c.minute < 10 else "") + integer(c.minute) + "分"
    if c.second is not None:
        words += ("" if c.minute else "零分") + integer(c.second) + "秒"
    return words


def _clock_range(m: re.Match[str]) -> str:
    left, right = re.split(rf"\s*{DASH}\s*", m.group(), maxsplit=1)
    a, b = clock(left), clock(right)
    return m.group() if a is None or b is None else f"{a}到{b}"


def _clock_one(m: re.Match[str]) -> str:
    return clock(m.group()) or m.group()


# ---- addresses, phone numbers, codes ----------------------------------------------------

_SEPARATORS = {"dot": "点", "at": "艾特", "dash": "杠", "underscore": "下划线", "plus": "加", "slash": "斜杠"}


def _read_pieces(pieces: list[Piece]) -> str:
    out = []
    for p in pieces:
        if p.kind == "word":
            out.append(f" {p.text} ")
        elif p.kind == "digits":
            out.append(digits(p.text))
        else:
            out.append(_SEPARATORS[p.kind])
    return "".join(out)


# 11-digit mobiles (138 0013 8000), 400/800 service numbers, landlines with an area code.
_PHONE_CN = re.compile(
    r"(?<![A-Za-z0-9+])(?:\+86[\s-]?)?(?:1[3-9]\d[\s-]?\d{4}[\s-]?\d{4}|[48]00[\s-]?\d{3}[\s-]?\d{4}"
    r"|0\d{2,3}-\d{7,8})(?![A-Za-z0-9-])")


def _phone(m: re.Match[str], yao: bool) -> str:
    plus, groups = phone_groups(m.group())
    if len(groups) == 1 and len(groups[0]) == 11:  # a mobile written in one run: 3-4-4
        groups = [groups[0][:3], groups[0][3:7], groups[0][7:]]
    elif plus and groups[0] == "86" and len(groups) == 2 and len(groups[1]) == 11:
        groups = ["86", groups[1][:3], groups[1][3:7], groups[1][7:]]
    return ("加" if plus else "") + "，".join(digits(g, yao) for g in groups)


# A pinyin syllable with its tone digit ("hao3") is the front end's input, not a code.
_PINYIN = re.compile(r"[a-z]+[1-5]")
_CODE_TOKEN = re.compile(
    r"#?(?<![A-Za-z0-9.-])(?=[A-Za-z0-9-]*\d)(?=[A-Za-z0-9-]*[A-Za-z])[A-Za-z0-9]+(?:-[A-Za-z0-9]+)*(?![A-Za-z0-9-])"
    r"|#\d+(?:-\d+)*")
_ID_DIGITS = re.compile(r"(订单号|订单|单号|编号|账号|帐号|工号|房间号|房间|验证码|密码|号码|尾号|卡号|学号)([:：]?\s*)(\d{3,})")


def spell_code(code: str, yao: bool = False) -> str:
    groups = []
    for group in filter(None, re.split(r"[-/]", code.lstrip("#"))):
        groups.append("".join(digits(run, yao) if run.isdigit()
                              else f" {run.upper() if run.isupper() or len(run) <= 2 else run} "
                              for run in re.findall(r"[A-Za-z]+|\d+", group)).strip())
    return "，".join(groups)


def _code(m: re.Match[str], yao: bool) -> str:
    if _PINYIN.fullmatch(m.group()):
        return m.group()
    return spell_code(m.group(), yao)


# ---- the rest ---------------------------------------------------------------------------

# A lone 2 before a measure word is 两 (两个, 两点, 两公里), never before 月 or 号, nor after 第.
_LIANG = re.compile(
    r"(?<![A-Za-z0-9.第])2(?=\s?(?:个|位|件|张|天|次|本|只|条|种|台|辆|块|斤|份|家|瓶|杯|双|对|层|岁|倍|点|周"
    r"|小时|分钟|星期|公里|公斤|千米|米|人|套|间|部|片|节|门|项|名|支|把|座|碗|口|趟|遍|句|页|篇|首|场|年(?!级|代)))")
_RANGE = re.compile(rf"{_B}({_NUM})\s*(?:{DASH}|[~～])\s*({_NUM}){_E}")
_NUMBER = re.compile(rf"({MINUS})?{_B}({_NUM}){_E}")


def normalize_zh(text: str, yao: bool = False) -> str:
    """Mandarin text with every number and symbol written as spoken characters."""
    text = EMAIL.sub(lambda m: _read_pieces(email_pieces(m.group())), text)
    text = URL.sub(lambda m: _read_pieces(url_pieces(split_url_trail(m.group())[0]))
                   + split_url_trail(m.group())[1], text)
    text = _PHONE_CN.sub(lambda m: _phone(m, yao), text)
    text = PHONE.sub(lambda m: _phone(m, yao), text)
    text = ISO_DATE.sub(_iso_date, text)
    text = SLASH_DATE.sub(_slash_date, text)
    text = _YEAR.sub(lambda m: digits(m.group(1)), text)
    text = CLOCK_RANGE.sub(_clock_range, text)
    text = CLOCK_ONE.sub(_clock_one, text)
    text = _MONEY_BEFORE.sub(_money_before, text)
    text = _MONEY_AFTER.sub(_money_after, text)
    text = _PERCENT.sub(_percent, text)
    text = _QUANTITY.sub(_quantity, text)
    text = _ID_DIGITS.sub(lambda m: m.group(1) + m.group(2) + digits(m.group(3), yao), text)
    text = _CODE_TOKEN.sub(lambda m: _code(m, yao), text)
    text = _LIANG.sub("两", text)
    text = _RANGE.sub(lambda m: f"{number(m.group(1))}到{number(m.group(2))}", text)
    text = _NUMBER.sub(lambda m: ("负" if m.group(1) else "") + number(m.group(2)), text)
    text = re.sub(r"(?<![a-z])\d+", lambda m: number(m.group()), text)
    return re.sub(r"(?<=[\u4e00-\u9fff，。！？；：、]) +| +(?=[\u4e00-\u9fff，。！？；：、])", "", text)
