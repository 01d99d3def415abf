"""Seeded random sentences in English and Mandarin for synthetic training and tests.

Every generated sentence falls in exactly one split by a hash of its text, so training
data and held-out evaluation sets never share a sentence, whatever seeds are used.
"""

from __future__ import annotations

import hashlib
import random

_EN = {
    "subj": ["the doctor", "my neighbour", "our team", "a small child", "the old captain",
             "everyone here", "the new manager", "your sister", "this company", "the teacher",
             "a friendly robot", "the chef", "my grandmother", "the pilot", "our customer"],
    "verb": ["bought", "painted", "found", "needs", "remembers", "borrowed", "fixed", "visited",
             "opened", "described", "watched", "carried", "ordered", "cleaned", "shared"],
    "obj": ["a yellow umbrella", "the broken window", "seven blue boxes", "an early train",
            "the quiet garden", "a warm cup of coffee", "the heavy suitcase", "my phone number",
            "a beautiful old map", "the big red balloon", "fresh bread", "the museum tickets",
            "a long letter", "the kitchen floor", "our weekly report"],
    "when": ["this morning", "yesterday", "before lunch", "on Friday", "last summer",
             "every evening", "after the meeting", "in the afternoon", "at midnight", "today"],
    "q": ["How can I help you today?", "Would you like to hear more about our plans?",
          "Is there anything else you need?", "Could you spell your name, please?",
          "What time does the shop open?", "Where did you park the car?",
          "Why is the sky so bright?", "Who wants another piece of cake?"],
    "greet": ["Hello!", "Good morning.", "Thanks for calling.", "Welcome back.", "Hi there!",
              "Nice to meet you.", "Thank you for waiting.", "Of course."],
}
_ZH = {
    "subj": ["我", "你", "他", "她", "我们", "老师", "医生", "妈妈", "朋友", "经理", "学生", "客人"],
    "verb": ["喜欢", "需要", "买了", "看见", "想要", "带来", "打开", "准备", "找到", "记得"],
    "obj": ["一杯茶", "新的手机", "红色的苹果", "这本书", "那张地图", "火车票", "一件衣服",
            "晚饭", "我们的报告", "小狗", "电脑", "一束花"],
    "when": ["今天", "昨天", "明天早上", "下午", "周末", "晚上", "刚才", "每天"],
    "tail": ["吗？", "。", "了。", "吧！"],
    "fixed": ["你好，欢迎光临。", "请问有什么可以帮您？", "谢谢您的耐心等待。", "银行行长很重视这件事。",
              "他的头发很长，个子也长高了。", "我们重新开始吧。", "这家店的生意很好。",
              "天气越来越冷了。", "请稍等一下。", "祝您生活愉快！"],
}


def _split_of(text: str) -> str:
    return "heldout" if hashlib.sha256(text.encode()).digest()[0] % 10 == 0 else "train"


def _english(rng: random.Random) -> str:
    kind = rng.random()
    if kind < 0.15:
        return rng.choice(_EN["q"])
    base = f"{rng.choice(_EN['subj'])} {rng.choice(_EN['verb'])} {rng.choice(_EN['obj'])}"
    if rng.random() < 0.6:
        base += f" {rng.choice(_EN['when'])}"
    sentence = base[0].upper() + base[1:] + rng.choice([".", ".", "!", "."])
    if kind > 0.85:
        sentence = f"{rng.choice(_EN['greet'])} {sentence}"
    return sentence


def _mandarin(rng: random.Random) -> str:
    if rng.random() < 0.2:
        return rng.choice(_ZH["fixed"])
    when = rng.choice(_ZH["when"]) if rng.random() < 0.5 else ""
    return f"{when}{rng.choice(_ZH['subj'])}{rng.choice(_ZH['verb'])}{rng.choice(_ZH['obj'])}{rng.choice(_ZH['tail'])}"


def random_sentences(n: int, lang: str = "en", seed: int = 0, split: str = "train") -> list[str]:
    """n distinct-where-possible sentences of `lang` belonging to `split` (train|heldout)."""
    if split not in ("train", "heldout"):
        raise ValueError(f"split must be 'train' or 'heldout', got {split!r}")
    make = {"en": _english, "zh": _mandarin}[lang]
    rng = random.Random(f"{lang}:{seed}:{split}")
    out: list[str] = []
    seen: set[str] = set()
    attempts = 0
    while len(out) < n:
        attempts += 1
        s = make(rng)
        if _split_of(s) != split:
            continue
        if s in seen and attempts < 50 * n:
            continue
        seen.add(s)
        out.append(s)
    return out
