"""What the audit log keeps of a question (rag/audit/): for every ask, chat turn, search and
OpenAI-compatible call, who asked, the answer or refusal, the passages it came from and what made
it, appended before the reply leaves (an answer that cannot be recorded is not given).

Public details (readable without the key): answer and conversation ids, the outcome, each cited
passage's chunk id, content hash, file and page, the models, the index version, top_k and filter.
The sealed part: the question, the query searched, the answer, the refusal's reason, the model's
unverified draft, the model's query expansion and the earlier turns the answer was given with.

A generated answer is recorded twice: "started" (question and passages) when its turn for the
model comes, before the first token is streamed, and "answered" (or "stopped", with what was
streamed, when the client went away) once it is verified; one that the client gave up on while
it waited for the model is recorded "abandoned".
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass

from rag.audit.events import Actor
from rag.audit.log import AuditLog
from rag.core.errors import ArchivistError
from rag.core.shapes import Answer, Citation, sha256_text

log = logging.getLogger(__name__)

# What of the provenance (rag/answering/assistant.py) an auditor needs: what produced the answer.
_PROVENANCE = ("llm_model", "llm_sha256", "embed_model", "index_version", "index_generation",
               "top_k", "filter")


def passages(citations: list[Citation]) -> list[dict]:
    return [{"chunk_id": c.chunk_id, "content_hash": sha256_text(c.text), "source": c.source,
             "page": c.page} for c in citations]


@dataclass(frozen=True)
class Asked:
    """One question's entries in the audit log."""

    log: AuditLog
    actor: Actor
    action: str  # "ask", "chat", "openai.chat", "search", "replay"
    collection: str
    conversation_id: str | None = None

    def _append(self, outcome: str, details: dict, secret: dict) -> None:
        if self.conversation_id:
            details["conversation_id"] = self.conversation_id
        self.log.append(self.actor, self.action, outcome, self.collection, details,
                        {k: v for k, v in secret.items() if v})

    def answered(self, question: str, answer: Answer, provenance: dict,
                 history: list[tuple[str, str]] | None = None) -> None:
        outcome = "cached" if answer.cached else "refused" if answer.refused else "answered"
        details = {"answer_id": answer.answer_id, "mode": answer.mode, "refused": answer.refused,
                   "cached": answer.cached, "passages": passages(answer.citations),
                   **{k: provenance.get(k) for k in _PROVENANCE}}
        self._append(outcome, details, {
            "question": question, "query": answer.query if answer.query != question else None,
            "answer": answer.answer, "reason": answer.reason, "draft": answer.draft,
            "expansion": answer.expansion, "history": [list(turn) for turn in history or []]})

    def started(self, question: str, citations: list[Citation], provenance: dict,
                history: list[tuple[str, str]] | None) -> None:
        details = {"passages": passages(citations), **{k: provenance.get(k) for k in _PROVENANCE}}
        self._append("started", details, {"question": question,
                                          "history": [list(turn) for turn in history or []]})

    def stopped(self, question: str, partial: str, provenance: dict) -> None:
        """The client went away mid-answer: what it was sent.  Never raises (the stream is
        being closed)."""
        try:
            self._append("stopped", {k: provenance.get(k) for k in _PROVENANCE},
                         {"question": question, "answer": partial})
        except ArchivistError:
            log.exception("could not record a stopped answer in the audit log")

    def abandoned(self, question: str, provenance: dict,
                  history: list[tuple[str, str]] | None = None) -> None:
        """The client went away while the answer waited for the model: the question was
        searched, nothing was sent.  Never raises (the stream is being closed)."""
        try:
            self._append("abandoned", {k: provenance.get(k) for k in _PROVENANCE},
                         {"question": question, "history": [list(t) for t in history or []]})
        except ArchivistError:
            log.exception("could not record an abandoned question in the audit log")

    def searched(self, question: str, results: list[Citation], index_version: str,
                 generation: int, top_k: int, filt: dict | None) -> None:
        details = {"passages": [{**p, "score": c.score}
                                for p, c in zip(passages(results), results)],
                   "index_version": index_version, "index_generation": generation,
                   "top_k": top_k, "filter": filt}
        self._append("answered", details, {"question": question})

    def failed(self, question: str, error: ArchivistError,
               history: list[tuple[str, str]] | None = None) -> None:
        """A question refused with an error (bad input, queue full, ...).  Its own error is the
        one the caller sees, even if this cannot be recorded."""
        with contextlib.suppress(ArchivistError):
            self._append("failed", {"error": error.message, "kind": type(error).__name__},
                         {"question": question, "history": [list(t) for t in history or []]})
