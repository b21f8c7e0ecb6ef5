"""Whether a sentence denies: "members do not pay", "no discount is given", "不收费", "没有折扣".

A denial is a claim like any other.  Similarity alone rates "No, the passage does not mention a
discount" close to "Customers who pay early receive a discount of 2 percent": the same words, the
opposite claim.  Answer checks compare the polarity of an answer sentence with that of the
passage sentence said to support it (rag/answering/verify.py), and a reply that answers "no"
where the best sentence affirms is not trusted (rag/answering/answerer.py).

Cues only, no parsing: a word of negation in English; in Chinese a negating character that is
not the first of a common word meaning something else (不同 "different", 非常 "very", 无论
"whatever", 未来 "future", 别人 "others").  Two negations cancel nowhere here: "not without"
reads as a denial, which only ever makes a check stricter.
"""

from __future__ import annotations

import re

_ENGLISH = re.compile(
    r"\b(no|not|never|none|nothing|nobody|neither|nor|cannot|without|lacks?|absent|"
    r"\w+n't)\b", re.I)
_CHINESE = re.compile(
    r"不(?![同少错断仅过管论久停但然如妨满足够])|没|無(?!論)|无(?!论|线|锡|疑)|未(?!来|來|知)|"
    r"并非|並非|非(?!常|洲)|别(?!人|的|处)|勿|莫")
# "No," or "不，" opening a reply: the answer to a yes/no question.
_BARE_NO = re.compile(r"^\s*(no\b|nope\b|不[，,。是]|没有[，,。]|否)", re.I)


def negates(sentence: str) -> bool:
    """The sentence has a word of negation (see the module docstring for what counts)."""
    return bool(_ENGLISH.search(sentence) or _CHINESE.search(sentence))


def answers_no(reply: str) -> bool:
    """The reply opens with a bare "No" (English) or 不/没有/否 (Chinese)."""
    return bool(_BARE_NO.match(reply))
