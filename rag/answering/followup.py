"""Follow-up questions made to stand alone.

In a conversation, "Who crews it?" after "Tell me about the rescue launch." is searched as "Who
crews the rescue launch?", and "And for juniors?" after "How much is full membership?" as both
questions together.  A question that names its own subject is left as it is.  The rules are
plain (pronouns, a leading "and"/"what about", 那…呢, a question too short to name anything);
the bundled 135M model cannot be trusted to rewrite questions.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from rag.language.terms import STOPWORDS, terms
from rag.language.text import is_cjk

_PRONOUN = re.compile(r"\b(it|its|they|them|their|this|that|these|those|he|she|him|her|there)\b", re.I)
_ELLIPSIS = re.compile(r"^\s*(and|also|what about|how about|or)\b", re.I)
_CJK_PRONOUN = re.compile(r"它|他们|她们|这个|那个|这些|那些|其")
_CJK_ELLIPSIS = re.compile(r"^\s*(那|还有|另外|那么)|呢[？?]?\s*$")
_WORD = re.compile(r"[A-Za-z][\w'-]*")
_SHORT = 2  # content words: fewer, and a question cannot name its own subject
# Words that start a question but never its subject.
_ASKING = STOPWORDS | {"tell", "about", "much", "many", "long", "often", "soon", "big", "cost",
                       "costs", "happens", "happen", "rules", "kind", "kinds", "sort", "type"}


@dataclass(frozen=True)
class FollowUp:
    query: str  # what to search
    focus: str  # what the answer sentence must match: the question, its pronoun resolved
    previous: str | None = None  # the question it follows up, when it needs it
    wording: str | None = None  # the follow-up as asked, when focus resolved its pronoun


def subject(question: str) -> str | None:
    """The longest run of content words of a question: its subject ("the rescue launch",
    "password rules", "boathouse opening hours")."""
    runs, current = [], []
    for word in _WORD.findall(question):
        if word.lower() in _ASKING:
            if current:
                runs.append(current)
            current = []
        else:
            current.append(word)
    if current:
        runs.append(current)
    best = max(runs, key=len, default=None)
    return " ".join(best) if best else None


def needs_context(question: str) -> bool:
    if is_cjk(question):
        content = [t for t in terms(question) if t not in STOPWORDS]
        return bool(_CJK_PRONOUN.search(question) or _CJK_ELLIPSIS.search(question)) or len(content) <= 2
    content = [w for w in _WORD.findall(question) if w.lower() not in _ASKING]
    return bool(_PRONOUN.search(question) or _ELLIPSIS.search(question)) or len(content) < _SHORT


def standalone(question: str, history: list[tuple[str, str]]) -> FollowUp:
    """The question as a search of its own, given the conversation's earlier (question, answer)
    turns, latest last."""
    if not history or not needs_context(question):
        return FollowUp(question, question)
    previous = history[-1][0]
    if not is_cjk(question) and _PRONOUN.search(question) and not _ELLIPSIS.search(question):
        topic = subject(previous)
        if topic:  # "Who crews it?" -> "Who crews the rescue launch?"
            resolved = _PRONOUN.sub(f"the {topic}", question, count=1)
            return FollowUp(resolved, resolved, previous, question)
    # "And for juniors?": searched with the question it follows; answered by what is new in it.
    return FollowUp(f"{previous} {question}", question, previous)
