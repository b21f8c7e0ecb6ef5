"""Query expansion by the chat model: the names an expert would look up, added to the search.

A user asks "只看文件最前面 20 行" ("just the first 20 lines of a file"); the manual page that
answers says "head - 输出文件的开始部分".  No word of the question is in it, and the bundled
embedding model barely knows Chinese, so neither side of the search finds it.  A chat model that
knows the subject replies "head -n 20 file", and `head` is in the page's opening line.  This is
query2doc / HyDE (Wang et al. 2023; Gao et al. 2022) kept to one short line of names.

Only the ranking uses the expansion: relevance, the evidence test and quotes still compare
passages with the question as asked (rag.retrieval.retriever.HybridRetriever.retrieve), so a model
that guesses wrong costs ranking, never a refusal's calibration, and an invented name in the
expansion cannot make a question look unanswerable.

Off by default (ARCHIVIST_QUERY_EXPANSION): measured with `bench/expansion.py`, the bundled
SmolLM2-135M replies with chatter that lowers Chinese and English MRR, while Qwen2.5-Coder-0.5B
lifts the Chinese figures (README: Query expansion).  A failing model, or a queue for it that
is full, never fails the search: the question is searched as asked.  The expansion takes its
turn at the generation gate like an answer (a model switch waits for it; on a busy server a
search, and an ask that ends in a refusal, now waits for the model too).
"""

from __future__ import annotations

import functools
import logging
import re

from rag.core.errors import ArchivistError
from rag.core.sections import SamplingParams
from rag.language.text import is_cjk

log = logging.getLogger(__name__)

INSTRUCTION = ("Reply with one short line: the exact names (commands, functions, options, files) "
               "that an expert would look up in the manual to answer this question. No explanation.")
# Greedy and short: a line of names, the same for the same question.
PARAMS = SamplingParams(temperature=0.0, top_p=1.0, max_tokens=32, repeat_penalty=1.0, seed=0)
MAX_CHARS = 200
_FENCE = re.compile(r"^\s*```\w*\s*$")
_MARKUP = re.compile(r"[`*#>]+")


def clean(reply: str) -> str:
    """The model's reply as search words: code fences and markdown dropped, lines joined, cut at
    MAX_CHARS on a word boundary."""
    lines = [line for line in reply.splitlines() if not _FENCE.match(line)]
    text = " ".join(_MARKUP.sub(" ", " ".join(lines)).split())
    if len(text) > MAX_CHARS:
        text = text[:MAX_CHARS].rsplit(" ", 1)[0]
    return text


class QueryExpander:
    """Asks the chat model of `models` (rag.models.loaded.Models) for a question's names,
    remembering the last `memory` replies (an evaluation or a replay asks the same question
    again).  `which`: 'cjk' expands only questions written mostly in Chinese or Japanese, 'all'
    every question, 'off' none."""

    def __init__(self, models, which: str, memory: int = 512) -> None:
        self._models = models
        self.which = which
        self._checked_model = False
        # Keyed by the model file and the question; a failure raises, so it is not remembered.
        self._remembered = functools.lru_cache(maxsize=memory)(self._ask)

    def wanted(self, question: str) -> bool:
        return self.which == "all" or (self.which == "cjk" and is_cjk(question))

    def expand(self, question: str) -> str:
        """Search words to add to `question` ("" when it is not expanded or the model fails)."""
        if not self.wanted(question):
            return ""
        try:
            self._check_model()
            return self._remembered(self._models.llm_key(), question)
        except ArchivistError as exc:  # the search goes on without it: the question as asked
            log.warning("query expansion failed, searching the question as asked: %s", exc)
            return ""

    def _check_model(self) -> None:
        """Once: say so when the model is the bundled 135M one, whose expansions made search
        worse wherever they were measured, rather than degrade search silently."""
        if self._checked_model:
            return
        self._checked_model = True
        from rag.models.repository import bundled_model

        bundled = bundled_model()
        if bundled is not None and self._models.llm_name() == bundled.path.name:
            log.warning("ARCHIVIST_QUERY_EXPANSION=%s with the bundled %s: its expansions made "
                        "search worse in every measurement (README: Query expansion). Use a "
                        "stronger chat model, or set ARCHIVIST_QUERY_EXPANSION=off.",
                        self.which, bundled.path.name)

    def _ask(self, model_key: str, question: str) -> str:
        """`model_key` (Models.llm_key) only keys the memory: a switched model is asked afresh."""
        messages = [{"role": "system", "content": INSTRUCTION}, {"role": "user", "content": question}]
        ticket = self._models.gate.admit()  # QueueFullError when the queue is full
        try:
            ticket.wait()
            return clean("".join(self._models.generator.generate(messages, PARAMS)))
        finally:
            ticket.release()
