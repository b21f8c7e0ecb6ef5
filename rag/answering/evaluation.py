"""`archivist eval`: retrieval and answer quality on a question set, as a user would run it on
their documents.

A question file is JSON Lines: {"id": str, "q": str, "expect": [file stems], "a": [answer
strings], "check": regex}.  A question without "expect" (or with an empty list) is one the
documents cannot answer.  A result "hits" when its file's stem (name without the last extension)
is expected.  Retrieval: hit@1, hit@5 and MRR@10 over answerable questions; passage@5 over those
with a "check" (a regular expression for the fact that answers them): the share whose top 5
holds a passage of an expected file that states it (the passage itself, not just its file); for
unanswerable ones, how often
retrieval refused (no passage judged relevant); for answerable ones, how often it wrongly
refused; search latency p50/p95.  Answers (--answers): the share answered right (the answer
contains one of the "a" strings, compared after rag.language.facts.normalize), refusals of both
kinds, answers stating a fact none of their passages does, supported sentences, citation precision.
"""

from __future__ import annotations

import json
import re
import statistics
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath
from typing import Callable, Sequence

from rag.core.errors import ArchivistError
from rag.core.shapes import Answer, Hit
from rag.language.facts import normalize


@dataclass(frozen=True)
class Question:
    id: str
    q: str
    expect: tuple[str, ...]  # empty: unanswerable
    answers: tuple[str, ...] = ()  # "a": strings a right answer contains (any one of them)
    check: str | None = None  # a regular expression for the fact that answers it

    @property
    def answerable(self) -> bool:
        return bool(self.expect)


def load_questions(path: Path) -> list[Question]:
    """Parse a question file, naming the line of any mistake."""
    if not path.is_file():
        raise ArchivistError(f"Question file {path} does not exist.")
    questions, seen = [], set()
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
            question = Question(str(item["id"]), str(item["q"]), tuple(item.get("expect") or ()),
                                tuple(str(a) for a in item.get("a") or ()), item.get("check") or None)
            if question.check:
                re.compile(question.check)
        except (json.JSONDecodeError, KeyError, TypeError, re.error) as exc:
            raise ArchivistError(f"{path}:{number}: not a question line ({exc}).",
                                 hint='Each line must be {"id": ..., "q": ..., "expect": [...], '
                                      '"a": [...]} ("expect" and "a" optional).') from exc
        if question.id in seen:
            raise ArchivistError(f"{path}:{number}: duplicate id {question.id!r}.")
        seen.add(question.id)
        questions.append(question)
    return questions


def stem(source: str) -> str:
    return PurePosixPath(source).stem


@dataclass
class Report:
    name: str
    answerable: int = 0
    unanswerable: int = 0
    hit_at_1: float = 0.0
    hit_at_5: float = 0.0
    mrr_at_10: float = 0.0
    passage_at_5: float | None = None  # over the questions with a "check"
    refused_unanswerable: float | None = None  # share of unanswerable questions refused
    refused_answerable: float | None = None  # share of answerable questions wrongly refused
    latency_p50_ms: float = 0.0
    latency_p95_ms: float = 0.0
    misses: list[dict] = field(default_factory=list)  # answerable questions not hit at 5

    def to_dict(self) -> dict:
        return asdict(self)


def first_hit_rank(sources: Sequence[str], expect: Sequence[str]) -> int | None:
    """1-based rank of the first result from an expected file."""
    wanted = set(expect)
    for rank, source in enumerate(sources, start=1):
        if stem(source) in wanted:
            return rank
    return None


def states_answer(hit: Hit, question: Question) -> bool:
    """Whether a hit is a passage of an expected file that states the question's fact."""
    text = f"{hit.chunk.heading or ''}\n{hit.chunk.text}"
    return stem(hit.chunk.source) in question.expect and bool(re.search(question.check or "", text))


def percentile(values: Sequence[float], share: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(share * (len(ordered) - 1))))]


def evaluate(name: str, questions: Sequence[Question],
             search: Callable[[str, int], list[Hit]], top_k: int = 10,
             refuses: Callable[[str], bool] | None = None) -> Report:
    """`refuses(question)`: whether an ask would refuse it (default: no hit is relevant)."""
    report = Report(name)
    reciprocal, hit1, hit5, latencies, passage5 = [], 0, 0, [], []
    refused_yes = refused_wrong = 0
    for question in questions:
        started = time.perf_counter()
        hits = search(question.q, top_k)
        latencies.append((time.perf_counter() - started) * 1000)
        refused = refuses(question.q) if refuses else not any(h.relevant for h in hits)
        if not question.answerable:
            report.unanswerable += 1
            refused_yes += refused
            continue
        report.answerable += 1
        refused_wrong += refused
        rank = first_hit_rank([h.chunk.source for h in hits], question.expect)
        hit1 += rank == 1
        hit5 += rank is not None and rank <= 5
        reciprocal.append(1.0 / rank if rank is not None and rank <= 10 else 0.0)
        if question.check:
            passage5.append(any(states_answer(h, question) for h in hits[:5]))
        if rank is None or rank > 5:
            report.misses.append({"id": question.id, "q": question.q, "expect": list(question.expect),
                                  "got": [stem(h.chunk.source) for h in hits[:5]]})
    if report.answerable:
        report.hit_at_1 = round(hit1 / report.answerable, 4)
        report.hit_at_5 = round(hit5 / report.answerable, 4)
        report.mrr_at_10 = round(statistics.fmean(reciprocal), 4)
        report.refused_answerable = round(refused_wrong / report.answerable, 4)
    if passage5:
        report.passage_at_5 = round(statistics.fmean(passage5), 4)
    if report.unanswerable:
        report.refused_unanswerable = round(refused_yes / report.unanswerable, 4)
    report.latency_p50_ms = round(percentile(latencies, 0.5), 1)
    report.latency_p95_ms = round(percentile(latencies, 0.95), 1)
    return report


def _cell(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def format_table(reports: Sequence[Report]) -> str:
    lines = [f"{'set':<24}{'n':>5}{'hit@1':>8}{'hit@5':>8}{'MRR@10':>8}{'pass@5':>8}{'refuse(no-ans)':>16}"
             f"{'refuse(ans)':>13}{'p50 ms':>9}{'p95 ms':>9}"]
    for r in reports:
        lines.append(f"{r.name:<24}{r.answerable + r.unanswerable:>5}{_cell(r.hit_at_1 if r.answerable else None):>8}"
                     f"{_cell(r.hit_at_5 if r.answerable else None):>8}{_cell(r.mrr_at_10 if r.answerable else None):>8}"
                     f"{_cell(r.passage_at_5):>8}"
                     f"{_cell(r.refused_unanswerable):>16}{_cell(r.refused_answerable):>13}"
                     f"{r.latency_p50_ms:>9.1f}{r.latency_p95_ms:>9.1f}")
    return "\n".join(lines)


@dataclass
class AnswerReport:
    """Answer quality: `archivist eval --answers` asks every question."""

    name: str
    mode: str = ""  # the answer mode asked for
    answered: int = 0  # answerable questions not refused
    right: float | None = None  # share of answerable questions whose answer has an expected string
    refused_unanswerable: float | None = None
    refused_answerable: float | None = None
    invented: float | None = None  # share of answers stating a fact none of their passages does
    supported_sentences: float | None = None  # share of answer sentences a passage supports
    citation_precision: float | None = None  # share of cited sentences citing an expected file
    quoted: float | None = None  # share of answers quoted from the passages (extractive)
    answer_p50_s: float = 0.0
    wrong: list[dict] = field(default_factory=list)  # answerable questions not answered right

    def to_dict(self) -> dict:
        return asdict(self)


def is_right(answer: Answer, question: Question) -> bool | None:
    """Whether the answer contains one of the question's answer strings (None without any)."""
    if not question.answers:
        return None
    text = normalize(answer.answer)
    return not answer.refused and any(normalize(a) in text for a in question.answers)


def evaluate_answers(name: str, questions: Sequence[Question], ask: Callable[[str], Answer],
                     mode: str = "") -> AnswerReport:
    report = AnswerReport(name, mode)
    refused = {True: [], False: []}
    right: list[bool] = []
    supported = sentences = cited = cited_right = invented = quoted = given = 0
    seconds = []
    for question in questions:
        started = time.perf_counter()
        answer = ask(question.q)
        seconds.append(time.perf_counter() - started)
        refused[question.answerable].append(answer.refused)
        verdict = is_right(answer, question) if question.answerable else None
        if verdict is not None:
            right.append(verdict)
            if not verdict:
                report.wrong.append({"id": question.id, "q": question.q, "a": list(question.answers),
                                     "got": answer.answer[:300], "refused": answer.refused})
        if answer.refused:
            continue
        given += 1
        invented += bool(answer.unstated_facts)
        quoted += answer.mode == "extractive"
        if not question.answerable:
            continue
        report.answered += 1
        sources = {c.id: stem(c.source) for c in answer.citations}
        for sentence in answer.sentences:
            sentences += 1
            supported += sentence.supported
            if sentence.citation is not None:
                cited += 1
                cited_right += sources.get(sentence.citation) in question.expect
    if right:
        report.right = round(statistics.fmean(right), 4)
    if refused[False]:
        report.refused_unanswerable = round(statistics.fmean(refused[False]), 4)
    if refused[True]:
        report.refused_answerable = round(statistics.fmean(refused[True]), 4)
    if given:
        report.invented = round(invented / given, 4)
        report.quoted = round(quoted / given, 4)
    if sentences:
        report.supported_sentences = round(supported / sentences, 4)
    if cited:
        report.citation_precision = round(cited_right / cited, 4)
    report.answer_p50_s = round(percentile(seconds, 0.5), 2)
    return report


def format_answer_table(reports: Sequence[AnswerReport]) -> str:
    lines = [f"{'set':<24}{'mode':<12}{'right':>7}{'refuse(ans)':>13}{'refuse(no-ans)':>16}"
             f"{'invented':>10}{'supported':>11}{'quoted':>8}{'p50 s':>8}"]
    for r in reports:
        lines.append(f"{r.name:<24}{r.mode:<12}{_cell(r.right):>7}{_cell(r.refused_answerable):>13}"
                     f"{_cell(r.refused_unanswerable):>16}{_cell(r.invented):>10}"
                     f"{_cell(r.supported_sentences):>11}{_cell(r.quoted):>8}{r.answer_p50_s:>8.2f}")
    return "\n".join(lines)
