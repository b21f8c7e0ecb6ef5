"""Scripts and sentences: the one definition of CJK characters, and the answer sentence splitter.

The character classes are bodies for a regex `[...]`, kept as separate pieces because each user
composes exactly the pieces it has always used: what chunking or the lexical index counts as CJK
decides chunk boundaries and index terms, and changing either would force every user to re-index.
"""

from __future__ import annotations

import re

HAN_KANA = r"\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff"  # hiragana, katakana, CJK ideographs (+ ext. A)
HAN_COMPAT = r"\uf900-\ufaff"  # CJK compatibility ideographs
HANGUL = r"\uac00-\ud7af"  # Hangul syllables
SENTENCE_END_CJK = "。！？"  # full-width . ! ?

# Chinese and Japanese, written without spaces: jieba segments these runs for the lexical index.
# Korean spaces its words, so Hangul is left to the word splitter.
CJK_RUN = re.compile(f"[{HAN_KANA}{HAN_COMPAT}]+")

# "." ends a sentence only before whitespace, so "4.2" and "mongod.conf" stay whole.
_SENTENCE_END = re.compile(rf"[.!?]+(?=\s|$)|[{SENTENCE_END_CJK}]+|\n")


def is_cjk(text: str) -> bool:
    """Mostly Chinese/Japanese: more than a third of its non-space characters are CJK."""
    letters = [ch for ch in text if not ch.isspace()]
    return bool(letters) and sum(len(run) for run in CJK_RUN.findall(text)) > len(letters) / 3


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of each sentence, surrounding whitespace excluded."""
    spans, start = [], 0
    for match in _SENTENCE_END.finditer(text):
        spans.append((start, match.end()))
        start = match.end()
    spans.append((start, len(text)))
    trimmed = []
    for start, end in spans:
        while start < end and text[start].isspace():
            start += 1
        while end > start and text[end - 1].isspace():
            end -= 1
        if end - start > 1:
            trimmed.append((start, end))
    return trimmed
