"""The checkable facts of a sentence: numbers, amounts, percentages, dates, times, codes and names,
normalised so that the same fact written two ways compares equal ("14" = "fourteen" = "十四",
"25 December" = "Dec 25" = "12月25日", "2 percent" = "2%", "晚上九点" = "21:00").

An answer sentence is only as good as its facts: similarity cannot tell "fourteen dinghies" from
"twenty boats", but the numbers can.  `missing(sentence, passage)` lists the facts a sentence
states that its passage does not contain.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Callable, Iterable

from rag.language.text import HAN_KANA

# --- English number words ------------------------------------------------------------------
_SMALL = {w: i for i, w in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
    "fifteen sixteen seventeen eighteen nineteen".split())}
_TENS = {w: 10 * i for i, w in enumerate("_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()) if i > 1}
_SCALES = {"hundred": 100, "thousand": 1000, "million": 1_000_000}
_ORDINALS = {"first": 1, "second": 2, "third": 3, "fourth": 4, "fifth": 5, "sixth": 6, "seventh": 7,
             "eighth": 8, "ninth": 9, "tenth": 10, "eleventh": 11, "twelfth": 12}
_NUMBER_WORD = "|".join(sorted([*_SMALL, *_TENS, *_SCALES, "dozen"], key=len, reverse=True))
# A run of number words: "twenty-five", "two hundred and fifty", "one thousand five hundred".
_WORD_NUMBER = re.compile(rf"\b(?:{_NUMBER_WORD})(?:(?:[\s-]+|\s+and\s+)(?:{_NUMBER_WORD}))*\b", re.I)
# "one" that is a pronoun, not a count: "no one", "the same one", "one of them".
_PRONOUN_ONE = re.compile(r"\b(?:no|any|each|every|the|this|that|which|same|someone|everyone)\s+one\b|\bone\s+of\b", re.I)

# --- Chinese numerals ---------------------------------------------------------------------------
_CN_DIGITS = {"〇": 0, "零": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7,
              "八": 8, "九": 9}
_CN_UNITS = {"十": 10, "百": 100, "千": 1000, "万": 10_000, "亿": 100_000_000}
_CN_NUM = f"[{''.join(_CN_DIGITS)}{''.join(_CN_UNITS)}]+"
# A single numeral is a number only before a measure word or unit (一律, 一般 are not numbers).
_CN_MEASURE = "个本册次天日年月周元人间位倍张家项条页分钟小时岁公里米斤座层号名份台辆"
_CN_NUMBER = re.compile(rf"{_CN_NUM}(?:点[{''.join(_CN_DIGITS)}]+)?")
_CN_WEEKDAY = re.compile(r"(?:周|星期|礼拜)([一二三四五六日天])")

# --- dates and times ----------------------------------------------------------------------------
_MONTHS = {m: i for i, m in enumerate(
    "january february march april may june july august september october november december".split(), 1)}
_MONTHS.update({m[:3]: i for m, i in list(_MONTHS.items())})
_MONTHS["sept"] = 9
_MONTH = "|".join(sorted(_MONTHS, key=len, reverse=True))
_DAY = r"(\d{1,2})(?:st|nd|rd|th)?"
_DATE_DM = re.compile(rf"\b{_DAY}\s+(?:of\s+)?({_MONTH})\b\.?", re.I)
_DATE_MD = re.compile(rf"\b({_MONTH})\.?\s+{_DAY}\b", re.I)
_DATE_CN = re.compile(r"(\d{1,2})月(\d{1,2})[日号]")
# Holidays with a fixed date: "Christmas" states the date 25 December as much as "Dec 25" does.
_HOLIDAYS = {"christmas day": "12-25", "christmas": "12-25", "new year's day": "01-01",
             "new year's eve": "12-31", "boxing day": "12-26", "圣诞节": "12-25", "元旦": "01-01"}
_HOLIDAY = re.compile("|".join(re.escape(h) for h in sorted(_HOLIDAYS, key=len, reverse=True)), re.I)
_TIME = re.compile(r"\b(\d{1,2}):(\d{2})\s*([ap]\.?m\.?)?", re.I)
_TIME_AMPM = re.compile(r"\b(\d{1,2})\s*([ap])\.?m\.?(?![a-z])", re.I)
_TIME_CN = re.compile(r"(上午|中午|下午|晚上|傍晚|凌晨|早上)?(\d{1,2})[点時时](半|(\d{1,2})分)?")

# --- the rest -----------------------------------------------------------------------------------
_PERCENT = re.compile(r"(\d+(?:\.\d+)?)\s*(?:%|％|\s+per\s*cent\b|\s+percent\b)", re.I)
_NUMBER = re.compile(r"(?<![\w.])\d{1,3}(?:,\d{3})+(?:\.\d+)?|(?<![\w.])\d+(?:\.\d+)?")
_TOKEN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]*[A-Za-z0-9]|[A-Za-z0-9]")
_SENTENCE_START = re.compile(r"(?:^|[.!?。！？:：]\s*|\n\s*)$")


@dataclass(frozen=True)
class Fact:
    kind: str  # number, percent, date, time, weekday, code, name
    value: str  # normalised: what is compared
    text: str  # as written

    def __str__(self) -> str:
        return self.text


def _number_text(value: float) -> str:
    return str(int(value)) if value == int(value) else f"{value:g}"


def words_to_number(text: str) -> int | None:
    total = current = 0
    for word in re.split(r"[\s-]+", text.lower()):
        if word in ("", "and"):
            continue
        if word in _SMALL:
            current += _SMALL[word]
        elif word in _TENS:
            current += _TENS[word]
        elif word == "dozen":
            current = (current or 1) * 12
        elif word == "hundred":
            current = (current or 1) * 100
        elif word in _SCALES:
            total += (current or 1) * _SCALES[word]
            current = 0
        else:
            return None
    return total + current


def chinese_to_number(text: str) -> float | None:
    """十五 -> 15, 二十 -> 20, 六百 -> 600, 五千 -> 5000, 二〇二四 -> 2024, 零点一 -> 0.1."""
    whole, _, fraction = text.partition("点")
    if not whole or any(ch not in _CN_DIGITS and ch not in _CN_UNITS for ch in whole):
        return None
    if len(whole) > 1 and all(ch in _CN_DIGITS for ch in whole):
        value = float("".join(str(_CN_DIGITS[ch]) for ch in whole))  # read digit by digit
    else:
        total = section = number = 0
        for ch in whole:
            if ch in _CN_DIGITS:
                number = _CN_DIGITS[ch]
            elif ch in ("万", "亿"):
                total += (section + number) * _CN_UNITS[ch]
                section = number = 0
            else:
                section += (number or (1 if ch == "十" else 0)) * _CN_UNITS[ch]
                number = 0
        value = float(total + section + number)
    if fraction:
        if any(ch not in _CN_DIGITS for ch in fraction):
            return None
        value += float("0." + "".join(str(_CN_DIGITS[ch]) for ch in fraction))
    return value


def _chinese_numbers(text: str) -> Iterable[tuple[int, int, float]]:
    """(start, end, value) of each Chinese numeral that counts something."""
    for match in _CN_NUMBER.finditer(text):
        run, after = match.group(), text[match.end():match.end() + 1]
        before = text[max(0, match.start() - 2):match.start()]
        if before.endswith(("周", "期", "拜")) or (run == "十" and after == "分" and
                                                   text[match.end() + 1:match.end() + 2] != "钟"):
            continue  # a weekday, or 十分 ("very")
        if len(run) == 1 and after not in _CN_MEASURE and run not in _CN_UNITS:
            continue  # 一律, 一般, 统一: words, not numbers
        value = chinese_to_number(run)
        if value is not None:
            yield match.start(), match.end(), value


def normalize(text: str) -> str:
    """Text for comparing answers: width and case folded, numbers written as digits, times as
    H:MM.  "It owns Fourteen dinghies" -> "it owns 14 dinghies"; "十五个工作日" -> "15个工作日"."""
    text = unicodedata.normalize("NFKC", text).casefold()
    text = _WORD_NUMBER.sub(lambda m: _number_text(words_to_number(m.group()) or 0)
                            if words_to_number(m.group()) is not None else m.group(), text)
    pieces, pos = [], 0
    for start, end, value in _chinese_numbers(text):
        pieces += [text[pos:start], _number_text(value)]
        pos = end
    text = "".join(pieces) + text[pos:]
    text = _TIME.sub(lambda m: f"{int(m.group(1))}:{m.group(2)}", text)
    text = re.sub(r"(?<=\d),(?=\d{3}\b)", "", text)
    return " ".join(text.split())


def facts(text: str, vocabulary: Callable[[str], bool] | None = None) -> list[Fact]:
    """The facts `text` states, in order of appearance.  `vocabulary(word)`, when given, says
    whether a lower-case word is common; an uncommon capitalised word at a sentence start (a
    place, a name) then counts as a name too."""
    text = unicodedata.normalize("NFKC", text)
    found: list[tuple[int, Fact]] = []
    taken: list[tuple[int, int]] = []

    def add(start: int, end: int, kind: str, value: str) -> None:
        if any(s < end and start < e for s, e in taken):
            return  # already part of a larger fact ("25" inside "25 December")
        taken.append((start, end))
        found.append((start, Fact(kind, value, text[start:end].strip())))

    for m in _HOLIDAY.finditer(text):
        add(m.start(), m.end(), "date", _HOLIDAYS[m.group().lower()])
    for m in _DATE_DM.finditer(text):
        add(m.start(), m.end(), "date", f"{_MONTHS[m.group(2).lower()]:02d}-{int(m.group(1)):02d}")
    for m in _DATE_MD.finditer(text):
        add(m.start(), m.end(), "date", f"{_MONTHS[m.group(1).lower()]:02d}-{int(m.group(2)):02d}")
    for m in _DATE_CN.finditer(_cn_digits(text)):
        add(m.start(), m.end(), "date", f"{int(m.group(1)):02d}-{int(m.group(2)):02d}")
    for m in _TIME.finditer(text):
        add(m.start(), m.end(), "time", _clock(int(m.group(1)), int(m.group(2)), m.group(3)))
    for m in _TIME_AMPM.finditer(text):
        add(m.start(), m.end(), "time", _clock(int(m.group(1)), 0, m.group(2)))
    for m in _TIME_CN.finditer(_cn_digits(text)):
        minutes = 30 if m.group(3) == "半" else int(m.group(4) or 0)
        hour = int(m.group(2))
        if m.group(1) in ("下午", "晚上", "傍晚") and hour < 12:
            hour += 12
        add(m.start(), m.end(), "time", f"{hour}:{minutes:02d}")
    for m in _CN_WEEKDAY.finditer(text):
        add(m.start(), m.end(), "weekday", "7" if m.group(1) in "日天" else
            _number_text(_CN_DIGITS[m.group(1)]))
    for m in _PERCENT.finditer(text):
        add(m.start(), m.end(), "percent", _number_text(float(m.group(1))) + "%")
    for m in re.finditer(r"百分之(" + _CN_NUM + r"(?:点[" + "".join(_CN_DIGITS) + r"]+)?)", text):
        value = chinese_to_number(m.group(1))
        if value is not None:
            add(m.start(), m.end(), "percent", _number_text(value) + "%")
    for m in _TOKEN.finditer(text):
        token = m.group()
        if _is_code(token):
            add(m.start(), m.end(), "code", token.lower())
    for m in _NUMBER.finditer(text):
        add(m.start(), m.end(), "number", _number_text(float(m.group().replace(",", ""))))
    pronoun_ones = {m.end() - 3 for m in _PRONOUN_ONE.finditer(text) if m.group().lower().endswith("one")}
    pronoun_ones |= {m.start() for m in _PRONOUN_ONE.finditer(text) if m.group().lower().startswith("one")}
    for m in _WORD_NUMBER.finditer(text):
        value = words_to_number(m.group())
        if value is not None and not (m.group().lower() == "one" and m.start() in pronoun_ones):
            add(m.start(), m.end(), "number", str(value))
    for m in re.finditer(r"\b(" + "|".join(_ORDINALS) + r")\b", text, re.I):
        add(m.start(), m.end(), "number", str(_ORDINALS[m.group(1).lower()]))
    for start, end, value in _chinese_numbers(text):
        add(start, end, "number", _number_text(value))
    for m in re.finditer(r"\b[A-Z][a-z]+(?:'s)?\b", text):
        word = m.group().removesuffix("'s")
        at_start = bool(_SENTENCE_START.search(text[:m.start()]))
        if word in ("I",) or word.lower() in _MONTHS:
            continue
        if at_start and (vocabulary is None or vocabulary(word.lower())):
            continue
        add(m.start(), m.start() + len(word), "name", word.lower())
    return [fact for _, fact in sorted(found, key=lambda item: item[0])]


def _cn_digits(text: str) -> str:
    """Chinese numerals as digits, lengths kept where they can be (for the date/time patterns):
    each numeral run is replaced in place; a run whose digits are shorter is padded with spaces
    after the digits so that later offsets still line up."""
    out, pos = [], 0
    for m in _CN_NUMBER.finditer(text):
        value = chinese_to_number(m.group())
        if value is None:
            continue
        digits = _number_text(value)
        if len(digits) > len(m.group()):
            continue  # cannot keep the offsets: leave it as written
        out += [text[pos:m.start()], digits + " " * (len(m.group()) - len(digits))]
        pos = m.end()
    return ("".join(out) + text[pos:]).replace(" 月", "月").replace(" 日", "日").replace(" 点", "点")


def _clock(hour: int, minute: int, meridiem: str | None) -> str:
    if meridiem:
        pm = meridiem.lower().startswith("p")
        hour = hour % 12 + (12 if pm else 0)
    return f"{hour}:{minute:02d}"


def _is_code(token: str) -> bool:
    """Identifiers and codes: letters with digits (ORA-01555, v2), underscores (pg_stat_io),
    dots (pg_hba.conf), or two or more capitals (VHF, NF-Guest)."""
    has_letter = any(ch.isalpha() for ch in token)
    has_digit = any(ch.isdigit() for ch in token)
    if not has_letter:
        return False
    if has_digit and not re.fullmatch(r"\d+(?:st|nd|rd|th|s)?", token, re.I):
        return not re.fullmatch(r"\d+-[a-z]+", token)  # "32-inch", "two-year": a number and a word
    return "_" in token or bool(re.search(r"[a-z0-9]\.[a-z0-9]", token, re.I)) or \
        sum(ch.isupper() for ch in token) >= 2


def passage_values(passage: str) -> set[str]:
    """What a passage can vouch for: its facts' values, its bare numbers (also those inside its
    dates and percentages: "the 25th" for "25 December"; not inside its times: "20:00" does not
    vouch for "20 boats"), and every word it contains (names are checked against words)."""
    values = {fact.value for fact in facts(passage)}
    untimed = _TIME.sub(" ", passage)
    values |= {_number_text(float(n.replace(",", ""))) for n in _NUMBER.findall(untimed)}
    lowered = unicodedata.normalize("NFKC", passage).lower()
    tokens = re.findall(r"[a-z0-9][a-z0-9_.\-]*[a-z0-9]|[a-z0-9]", lowered) + re.findall(r"[a-z]+", lowered)
    values |= {token for token in tokens if not token.isdigit()}  # words and codes; numbers above
    values |= {run for run in re.findall(f"[{HAN_KANA}]+", passage)}
    return values


def missing(sentence: str, passage: str, vocabulary: Callable[[str], bool] | None = None) -> list[Fact]:
    """The facts of `sentence` that `passage` does not contain."""
    have = passage_values(passage)
    return [fact for fact in facts(sentence, vocabulary) if fact.value not in have]
