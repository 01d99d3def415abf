"""Text normalisation: each input → the exact words the voice is given to say."""

import itertools
import re

import pytest

from services.common.errors import InvalidInput
from services.tts.normalize import normalize
from services.tts.pinyin_phonemes import text_to_syllables
from services.tts.text import split_sentences

ENGLISH = [
    # money
    ("$42.50", "forty-two dollars and fifty cents"),
    ("It costs $42.50 😀", "It costs forty-two dollars and fifty cents"),
    ("$1", "one dollar"),
    ("$0.99", "ninety-nine cents"),
    ("$42.00", "forty-two dollars"),
    ("Price: $1,299.99.", "Price: one thousand two hundred ninety-nine dollars and ninety-nine cents."),
    ("$2.5M", "two point five million dollars"),
    ("$100k", "one hundred thousand dollars"),
    ("$5-10", "five to ten dollars"),
    ("€5", "five euros"),
    ("€0.50", "fifty cents"),
    ("£3.20", "three pounds and twenty pence"),
    ("¥500", "five hundred yen"),
    ("42元", "forty-two yuan"),
    ("USD 5", "five dollars"),
    ("10 EUR", "ten euros"),
    ("50¢", "fifty cents"),
    # numbers
    ("21st", "twenty-first"),
    ("The 2nd and 3rd floors", "The second and third floors"),
    ("-5", "minus five"),
    ("3.14", "three point one four"),
    ("1,234,567", "one million two hundred thirty-four thousand five hundred sixty-seven"),
    ("Room 101", "Room one hundred one"),
    ("007", "zero zero seven"),
    ("50%", "fifty percent"),
    ("Save 15%!", "Save fifteen percent!"),
    ("5-10", "five to ten"),
    ("The score was 3-2.", "The score was three to two."),
    ("1/2", "one half"),
    ("Open 24/7", "Open twenty-four seven"),
    ("8/10", "eight out of ten"),
    ("Go 2x faster", "Go two times faster"),
    ("v2.0", "version two point zero"),
    # dates
    ("12/03/2026", "December third, twenty twenty-six"),
    ("2026-12-03", "December third, twenty twenty-six"),
    ("13/03/2026", "March thirteenth, twenty twenty-six"),
    ("Dec 3", "December third"),
    ("Mon, Dec 3, 2026", "Monday, December third, twenty twenty-six"),
    ("3 December 2026", "the third of December twenty twenty-six"),
    ("In 1999, we met.", "In nineteen ninety-nine, we met."),
    ("the 1990s", "the nineteen nineties"),
    # times
    ("3:30 pm", "three thirty PM"),
    ("15:45", "fifteen forty-five"),
    ("15:00", "fifteen hundred"),
    ("3:05", "three oh five"),
    ("10 a.m. today", "ten AM today"),
    ("It's 5 p.m.", "It's five PM."),
    ("9am-5pm", "nine AM to five PM"),
    # phone numbers
    ("1-800-555-0199", "one, eight zero zero, five five five, zero one nine nine"),
    ("(800) 555-0199", "eight zero zero, five five five, zero one nine nine"),
    ("+44 20 7946 0958", "plus four four, two zero, seven nine four six, zero nine five eight"),
    # e-mail, URLs
    ("Email support@example.com please", "Email support at example dot com please"),
    ("john.doe99@gmail.com", "john dot doe nine nine at gmail dot com"),
    ("Visit https://www.example.com/help today.", "Visit example dot com slash help today."),
    ("See https://shop.example.co.uk/orders/12345?ref=abc now", "See shop dot example dot co dot U K now"),
    # codes and ids
    ("Order #A12-3456 shipped", "Order A-one two, three four five six shipped"),
    ("AB123", "A-B one two three"),
    ("order 12345", "order one two three four five"),
    ("#1 fan", "number one fan"),
    ("Use code SAVE20", "Use code SAVE two zero"),
    ("COVID-19", "COVID, one nine"),
    # units
    ("5 GB", "five gigabytes"),
    ("5-10 GB", "five to ten gigabytes"),
    ("1 kg", "one kilogram"),
    ("10 km", "ten kilometers"),
    ("60 mph", "sixty miles per hour"),
    ("20°C", "twenty degrees Celsius"),
    ("-3°F", "minus three degrees Fahrenheit"),
    # abbreviations
    ("Dr. Smith lives on 5th St.", "Doctor Smith lives on fifth Street."),
    ("Mr. and Mrs. Smith", "Mister and Missus Smith"),
    ("We visited St. Louis", "We visited Saint Louis"),
    ("We live on Main St. Then we moved.", "We live on Main Street. Then we moved."),
    ("e.g. this", "for example this"),
    ("A & B", "A and B"),
    # pictographs
    ("😀", ""),
    ("Hello 👋🏽 world", "Hello world"),
    ("❤️ Thanks!", "Thanks!"),
    ("★★★★☆ 4/5", "four fifths"),
]

MANDARIN = [
    ("¥42.50", "四十二点五元"),
    ("42.50元", "四十二点五元"),
    ("价格是¥1,299.00。", "价格是一千二百九十九元。"),
    ("3.5万元", "三点五万元"),
    ("$5", "五美元"),
    ("€5.50", "五点五欧元"),
    ("2026年12月3日", "二零二六年十二月三日"),
    ("2026-12-03", "二零二六年十二月三日"),
    ("12/03/2026", "二零二六年十二月三日"),
    ("3月8日是妇女节", "三月八日是妇女节"),
    ("3:30", "三点三十分"),
    ("15:05", "十五点零五分"),
    ("12:00", "十二点"),
    ("下午3:30", "下午三点三十分"),
    ("3:30 pm", "下午三点三十分"),
    ("请在10:00-14:00之间来", "请在十点到十四点之间来"),
    ("50%", "百分之五十"),
    ("优惠15%！", "优惠百分之十五！"),
    ("请拨打13800138000", "请拨打一三八，零零一三，八零零零"),
    ("400-820-8820", "四零零，八二零，八八二零"),
    ("手机+86 138 0013 8000", "手机加八六，一三八，零零一三，八零零零"),
    ("订单号A12-3456", "订单号A一二，三四五六"),
    ("验证码：123456", "验证码：一二三四五六"),
    ("2个人", "两个人"),
    ("2点", "两点"),
    ("第2名", "第二名"),
    ("2号楼", "二号楼"),
    ("2000人", "两千人"),
    ("共1,000人", "共一千人"),
    ("5-10个", "五到十个"),
    ("-3", "负三"),
    ("3.14", "三点一四"),
    ("温度-5°C", "温度负五摄氏度"),
    ("时速100km/h", "时速一百公里每小时"),
    ("下载5GB", "下载五GB"),
    ("你好😀", "你好"),
    ("邮箱support@example.com", "邮箱support艾特example点com"),
    ("ni3 hao3", "ni3 hao3"),
]


@pytest.mark.parametrize("text,spoken", ENGLISH)
def test_english_words(text, spoken):
    assert normalize(text, "en") == spoken


@pytest.mark.parametrize("text,spoken", MANDARIN)
def test_mandarin_characters(text, spoken):
    assert normalize(text, "zh") == spoken


def test_the_table_is_large_enough():
    assert len(ENGLISH) + len(MANDARIN) >= 60


@pytest.mark.parametrize("text", [t for t, _ in ENGLISH])
def test_english_output_has_no_digits_or_pictographs(text):
    out = normalize(text, "en")
    assert not re.search(r"\d|[$€£¥#@%😀👋❤★☆]", out), out


@pytest.mark.parametrize("text", [t for t, _ in MANDARIN if t != "ni3 hao3"])
def test_mandarin_output_has_no_arabic_digits(text):
    assert not re.search(r"\d", normalize(text, "zh"))


def test_mandarin_phone_digits_may_say_yao():
    assert normalize("请拨打13800138000", "zh", yao=True) == "请拨打幺三八，零零幺三，八零零零"
    assert normalize("订单号A12-3456", "zh", yao=True) == "订单号A幺二，三四五六"


def test_periods_inside_prices_and_abbreviations_no_longer_split_sentences():
    text = "Dr. Smith paid $3.50 at 3 p.m. Then he left. It is 5 p.m. now."
    assert split_sentences(normalize(text, "en")) == [
        "Doctor Smith paid three dollars and fifty cents at three PM.", "Then he left.",
        "It is five PM now."]


def test_mandarin_front_end_reads_normalised_codes_and_pinyin():
    syl = [s.pinyin for s in text_to_syllables(normalize("订单A12，共¥2", "zh")) if not isinstance(s, str)]
    assert syl == ["ding4", "dan1", "ei1", "yi1", "er4", "gong4", "liang3", "yuan2"]
    assert [s.pinyin for s in text_to_syllables("ni3 hao3")] == ["ni3", "hao3"]
    assert text_to_syllables("hello world") == []


def test_unknown_language_is_one_clear_error():
    with pytest.raises(InvalidInput, match="normalisation"):
        normalize("hello", "fr")


def test_speech_says_the_price_and_not_the_emoji(tts):
    parts = list(tts.sentences("It costs $42.50 😀. Call Dr. Smith at 3 p.m. today!", "en"))
    assert [p.text for p in parts] == ["It costs forty-two dollars and fifty cents.",
                                      "Call Doctor Smith at three PM today!"]
    for speech in parts:
        ph = speech.phonemes
        assert ph[0].start == 0.0 and ph[-1].end == pytest.approx(speech.audio.duration, abs=1e-9)
        assert all(a.end == pytest.approx(b.start) for a, b in itertools.pairwise(ph))
    assert "😀" not in "".join(p.text for p in parts)


def test_mandarin_speech_says_the_price_in_characters(tts):
    speech = tts.synthesize("一共¥42.50😀", "zh")
    assert speech.text == "一共四十二点五元"
    syl = [s.phoneme for s in speech.syllables if s.phoneme != "sil"]
    assert syl == ["yi1", "gong4", "si4", "shi2", "er4", "dian3", "wu3", "yuan2"]


def test_text_of_only_symbols_is_rejected(tts):
    with pytest.raises(InvalidInput, match="empty"):
        tts.synthesize("😀 ★", "en")
