"""What happens to a question: decide first, queue last.

1. The question is checked (empty, too long, top_k out of range: BadRequestError).
2. A repeat of a recorded question, with the same index version, models and parameters, is
   answered from its record.
3. Retrieval, on one view of the index, and the evidence test (rag/answering/evidence.py): a
   question the passages do not answer is refused, recorded, and answered without the model.  In
   answer mode "extractive" the passages' best sentences are quoted, also without the model.
4. Only now is the model needed: the request takes a place in its queue (QueueFullError when the
   queue is full), and the returned stream waits for its turn, packs the prompt, generates,
   verifies each sentence and each fact against the passages (in mode "auto", a reply that does
   not verify gives way to the quotes) and records the answer.

So a cached answer or a refusal never waits behind a running generation.

Every question is recorded in the audit log before its answer, refusal or passages are returned
(rag/answering/question_events.py): if the event cannot be written, the caller gets the error
(AuditUnavailableError) instead of the answer.  `actor` says who asks (the CLI's local user by
default; the HTTP routes pass the API key's).
"""

from __future__ import annotations

import time
from contextlib import nullcontext
from pathlib import Path
from typing import Any, Callable, Iterator

from rag.answering.answerer import Answerer, Plan
from rag.answering.evidence import EvidenceTest
from rag.answering.question_events import Asked
from rag.answering.verify import Verifier
from rag.audit.events import Actor
from rag.audit.log import AuditKeyError, AuditUnavailableError
from rag.core.errors import ArchivistError, BadRequestError, NotFoundError
from rag.core.shapes import Answer, Citation, Hit, sha256_text
from rag.models.generation_gate import AnswerStream, Ticket
from rag.retrieval.expansion import QueryExpander
from rag.retrieval.retriever import HybridRetriever, SearchFilter
from rag.storage.index_views import IndexView

History = list[tuple[str, str]]


class Assistant:
    """Answers questions about one collection (rag.library.Collection)."""

    def __init__(self, collection) -> None:
        self.collection = collection
        self.settings = collection.settings
        self.models = collection.models
        self.expander = QueryExpander(self.models, self.settings.retrieval.query_expansion)

    @property
    def name(self) -> str:
        return self.collection.name

    # --- requests ----------------------------------------------------------------------
    def check_query(self, question: str, top_k: int | None) -> tuple[str, int]:
        """The cleaned question and the top_k to use; BadRequestError for invalid input."""
        q = self.settings.query
        question = (question or "").strip()
        if not question:
            raise BadRequestError("The question is empty.", hint="Ask something, e.g. \"What is ...?\"")
        if len(question) > q.max_question_chars:
            raise BadRequestError(
                f"The question is {len(question)} characters long; the limit is {q.max_question_chars}.",
                hint="Shorten it, or raise ARCHIVIST_MAX_QUESTION_CHARS.")
        top_k = q.top_k if top_k is None else top_k
        self._check_top_k(top_k)
        return question, top_k

    def _check_top_k(self, top_k: int) -> None:
        if not 1 <= top_k <= self.settings.query.max_top_k:
            raise BadRequestError(f"top_k must be between 1 and {self.settings.query.max_top_k}, "
                                  f"got {top_k}.")

    def search(self, question: str, top_k: int | None = None, filt: SearchFilter | None = None,
               actor: Actor | None = None) -> list[Citation]:
        """Ranked passages, no model."""
        asked = self._asked(actor, "search")
        try:
            question, top_k = self.check_query(question, top_k)
            with self.collection.views.reading() as view:
                hits = self.searcher(view)(question, top_k, filt)
                version, generation = view.index_version(), view.generation
        except ArchivistError as exc:
            asked.failed(question, exc)
            raise
        results = [Citation.from_hit(i, h) for i, h in enumerate(hits, start=1)]
        asked.searched(question, results, version, generation, top_k, _as_dict(filt))
        return results

    def ask(self, question: str, top_k: int | None = None, history: History | None = None,
            filt: SearchFilter | None = None, debug: bool = False, mode: str | None = None,
            actor: Actor | None = None) -> Answer:
        return self.start(question, top_k, history, filt, debug, mode=mode,
                          actor=actor).result()["done"]

    def start(self, question: str, top_k: int | None = None, history: History | None = None,
              filt: SearchFilter | None = None, debug: bool = False, view: IndexView | None = None,
              mode: str | None = None, actor: Actor | None = None, action: str = "ask",
              conversation_id: str | None = None) -> AnswerStream:
        """Decide how to answer, now; the stream yields the answer as it is made (see the module
        doc).  Raises BadRequestError, QueueFullError, NotFoundError before anything is sent.
        `mode`: the answer mode, if not the configured one (auto, generative, extractive);
        `actor`, `action` ("ask", "openai.chat", ...) and `conversation_id`: for the audit log."""
        asked = self._asked(actor, action, conversation_id)
        try:
            return self._start(question, top_k, history, filt, debug, view, mode, asked)
        except (AuditUnavailableError, AuditKeyError):
            raise
        except ArchivistError as exc:
            asked.failed(question, exc, history)
            raise

    def _start(self, question: str, top_k: int | None, history: History | None,
               filt: SearchFilter | None, debug: bool, view: IndexView | None, mode: str | None,
               asked: Asked) -> AnswerStream:
        question, top_k = self.check_query(question, top_k)
        mode = mode or self.settings.answer.answer_mode
        started = time.perf_counter()
        records = self.collection.records
        with self._reading(view) as v:
            provenance = self._provenance(v, top_k, filt, mode)
            key, model_key = None, self.models.llm_key()
            if not history and not debug:
                key = records.cache_key(question, provenance, model_key)
                hit = records.cached(key)
                if hit is not None:
                    answer = hit[1].model_copy(update={"answer_id": hit[0], "cached": True})
                    asked.answered(question, answer, provenance)
                    return AnswerStream.ready(answer)
            answerer = self._answerer(v)
            plan = answerer.retrieve(question, top_k, history, filt)
        if plan.answer is None and mode == "extractive":
            plan.answer = answerer.extract(plan)  # quoted from the passages: the model is not needed
        if plan.answer is not None:
            answer_id = self._record(question, plan.answer, provenance, key, started)
            answer = plan.answer.model_copy(update={"answer_id": answer_id})
            asked.answered(question, answer, provenance, history)
            return AnswerStream.ready(answer)
        ticket = self.models.gate.admit()
        try:
            self.models.load_generator()  # a missing or broken model fails here, before any reply
            generator = answerer.generator  # this answer's model, whatever is switched in later
        except BaseException:
            ticket.release()
            raise
        if self.models.llm_key(generator) != model_key:  # switched since the cache was looked up
            key = None
        provenance = {**provenance, "llm_model": generator.name}
        return AnswerStream(self._generated(answerer, plan, ticket, debug, mode, provenance, key,
                                            started, asked), ticket,
                            unstarted=lambda: asked.abandoned(plan.question, provenance, plan.history))

    def _generated(self, answerer: Answerer, plan: Plan, ticket: Ticket, debug: bool, mode: str,
                   provenance: dict, key: str | None, started: float,
                   asked: Asked) -> Iterator[tuple[str, Any]]:
        """Runs once the ticket's turn has come (the stream waits for it before each step)."""
        answerer.pack(plan, debug)
        provenance = {**provenance, "llm_sha256": self.models.llm_sha256(answerer.generator)}
        asked.started(plan.question, plan.citations, provenance, plan.history)  # before any token
        pieces: list[str] = []
        tokens: Iterator[str] | None = None
        try:
            yield "citations", plan.citations
            tokens = answerer.generate(plan)
            for piece in tokens:
                pieces.append(piece)
                yield "token", piece
        except GeneratorExit:  # the client went away: record what it was sent
            asked.stopped(plan.question, "".join(pieces), provenance)
            raise
        finally:
            if tokens is not None:
                tokens.close()  # a client that went away stops the model here
        ticket.release()  # the next request may use the model while this answer is verified
        answer = answerer.finish(plan, "".join(pieces), mode)
        answer_id = self._record(plan.question, answer, provenance, key, started,
                                 answerer.generator)
        answer = answer.model_copy(update={"answer_id": answer_id})
        asked.answered(plan.question, answer, provenance, plan.history)
        yield "done", answer

    # --- conversations -----------------------------------------------------------------
    def chat(self, message: str, conversation_id: str | None = None, top_k: int | None = None,
             filt: SearchFilter | None = None, actor: Actor | None = None) -> tuple[str, Answer]:
        """One turn of a conversation (started when conversation_id is None)."""
        seen = self.start_chat(message, conversation_id, top_k, filt, actor=actor).result()
        return seen["conversation"], seen["done"]

    def start_chat(self, message: str, conversation_id: str | None = None,
                   top_k: int | None = None, filt: SearchFilter | None = None,
                   mode: str | None = None, actor: Actor | None = None) -> AnswerStream:
        """Like start(), with a first ("conversation", id) event; the turn is kept once done.
        A conversation of another collection is a NotFoundError: its turns never reach the
        prompt."""
        records = self.collection.records
        if conversation_id is None:
            conversation_id, history = records.new_conversation_id(), []
        else:
            # Each earlier turn as it was searched (a follow-up of a follow-up resolves through
            # it), refused ones too: "And can I renew?" follows whatever was asked before.
            try:
                history = [(t["query"], t["answer"]["answer"])
                           for t in self.conversation(conversation_id)]
            except NotFoundError as exc:
                self._asked(actor, "chat", conversation_id).failed(message, exc)
                raise
        stream = self.start(message, top_k, history=history, filt=filt, mode=mode, actor=actor,
                            action="chat", conversation_id=conversation_id)

        def with_turn(events: Iterator[tuple[str, Any]]) -> Iterator[tuple[str, Any]]:
            yield "conversation", conversation_id
            for kind, data in events:
                if kind == "done":
                    records.add_turn(self.name, conversation_id, data.answer_id)
                yield kind, data

        return stream.wrapped(with_turn)

    def conversation(self, conversation_id: str) -> list[dict]:
        """The conversation's turns; NotFoundError unless it belongs to this collection."""
        records = self.collection.records
        if records.conversation_collection(conversation_id) != self.name:
            raise NotFoundError(f"No conversation {conversation_id!r} in collection {self.name!r}.",
                                hint="Leave conversation_id out to start a new conversation.")
        return records.turns(conversation_id)

    # --- audit -------------------------------------------------------------------------
    def answer_record(self, answer_id: str) -> dict:
        """The audit record; NotFoundError unless the answer was made in this collection."""
        record = self.collection.records.get_answer(answer_id)
        if record is None or record["collection"] != self.name:
            raise NotFoundError(f"No answer {answer_id!r} in collection {self.name!r}.",
                                hint="Answer ids come from ask and chat replies.")
        return record

    def replay(self, answer_id: str, actor: Actor | None = None) -> dict:
        """Re-run a recorded answer and report what changed since: passages, answer, models."""
        record = self.answer_record(answer_id)
        report = self._replay(record)
        asked = self._asked(actor, "replay")
        asked.log.append(asked.actor, "replay", "answered", self.name,
                         {k: report[k] for k in ("answer_id", "passages_changed",
                                                 "passages_removed", "passages_added",
                                                 "answer_changed", "model_changed")},
                         {"question": record["question"], "answer_then": report["answer_then"],
                          "answer_now": report["answer_now"]})
        return report

    def _replay(self, record: dict) -> dict:
        from rag.core.sections import SamplingParams

        answer_id = record["id"]
        then = record["provenance"]
        filt = SearchFilter(**then["filter"]) if then.get("filter") else None
        with self.collection.views.reading() as view:
            now = self._provenance(view, then["top_k"], filt, "")
            answerer = self._answerer(view, SamplingParams(**then["params"]))
            plan = answerer.retrieve(record["query"], then["top_k"], filt=filt)
        mode = then.get("answer", {}).get("answer_mode", "generative")  # older records: generative
        if plan.answer is not None:
            fresh = plan.answer
        elif mode == "extractive":
            fresh = answerer.extract(plan)
        else:
            ticket = self.models.gate.admit()
            try:
                ticket.wait()
                answerer.pack(plan)
                fresh = answerer.finish(plan, "".join(answerer.generate(plan)), mode)
            finally:
                ticket.release()
        before = {(p["chunk_id"], p["content_hash"]) for p in then["passages"]}
        after = {(c.chunk_id, sha256_text(c.text)) for c in fresh.citations}
        return {
            "answer_id": answer_id,
            "passages_changed": before != after,
            "passages_removed": sorted(cid for cid, _ in before - after),
            "passages_added": sorted(cid for cid, _ in after - before),
            "answer_changed": fresh.answer != record["answer"]["answer"],
            "index_version": {"then": then["index_version"], "now": now["index_version"]},
            "llm_sha256": {"then": then["llm_sha256"], "now": self.models.llm_sha256()},
            "llm_model": {"then": then.get("llm_model"), "now": self.models.llm_name()},
            "model_changed": then["llm_sha256"] != self.models.llm_sha256(),
            "answer_then": record["answer"]["answer"],
            "answer_now": fresh.answer,
        }

    def evaluate(self, paths: list[Path], top_k: int = 10, answers: bool = False,
                 modes: list[str] | None = None) -> list:
        """Retrieval metrics per question file, then over all of them (`archivist eval`); with
        `answers`, answer metrics too, in each of `modes` (default: the configured answer mode;
        every question goes to the model unless the mode is extractive: slow).  The whole run
        reads one view of the index, so a reindex meanwhile does not mix two generations."""
        from rag.answering.evaluation import evaluate, evaluate_answers, load_questions

        self._check_top_k(top_k)
        sets = [(path.name, load_questions(path)) for path in paths]
        with self.collection.views.reading() as view:
            search = self.searcher(view)
            answerer = self._answerer(view)

            def refuses(question: str) -> bool:  # as an ask would, at the default top_k
                return answerer.retrieve(question, self.settings.query.top_k).answer is not None

            reports = [evaluate(name, questions, search, top_k, refuses) for name, questions in sets]
            if len(sets) > 1:
                everything = [q for _, questions in sets for q in questions]
                reports.append(evaluate("all", everything, search, top_k, refuses))
            for mode in (modes or [self.settings.answer.answer_mode]) if answers else []:
                def ask(question: str, mode: str = mode) -> Answer:  # debug: never from the cache
                    return self.start(question, debug=True, view=view, mode=mode).result()["done"]
                reports += [evaluate_answers(name, questions, ask, mode) for name, questions in sets]
        return reports

    # --- parts -------------------------------------------------------------------------
    def _asked(self, actor: Actor | None, action: str, conversation_id: str | None = None) -> Asked:
        return Asked(self.collection.audit, actor or Actor.local_cli(), action, self.name,
                     conversation_id)

    def _reading(self, view: IndexView | None):
        return nullcontext(view) if view is not None else self.collection.views.reading()

    def retriever(self, view: IndexView) -> HybridRetriever:
        return HybridRetriever(view.store, view.lexical, self.collection.embedder_of(view), self.settings.retrieval)

    def searcher(self, view: IndexView) -> Callable[..., list[Hit]]:
        """The view's search as configured: (question, top_k, filter=None) -> hits, the question
        expanded by the chat model when ARCHIVIST_QUERY_EXPANSION says so
        (rag.retrieval.expansion)."""
        retriever = self.retriever(view)

        def search(question: str, top_k: int, filt: SearchFilter | None = None) -> list[Hit]:
            return retriever.search(question, top_k, filt, self.expander.expand(question))
        return search

    def _answerer(self, view: IndexView, params=None) -> Answerer:
        cfg = self.settings.answer
        embedder = self.collection.embedder_of(view)
        return Answerer(self.retriever(view), lambda: self.models.generator,
                        params or self.settings.sampling,
                        EvidenceTest(embedder, self.settings.retrieval), cfg.context_neighbours,
                        Verifier(embedder, cfg.support_threshold, cfg.support_threshold_cjk), cfg.overrule_refusal_evidence,
                        self.expander.expand)

    def _provenance(self, view: IndexView, top_k: int, filt: SearchFilter | None, mode: str) -> dict:
        """What produces an answer; equal provenance (and model file) means an equal answer."""
        return {"collection": self.name, "llm_model": self.models.llm_name(),
                "embed_model": self.collection.embedder_of(view).fingerprint,
                "index_version": view.index_version(), "index_generation": view.generation,
                "top_k": top_k, "filter": _as_dict(filt),
                "params": self.settings.sampling.model_dump(),
                "retrieval": self.settings.retrieval.model_dump(),
                "answer": {**self.settings.answer.model_dump(), "answer_mode": mode}}

    def _record(self, question: str, answer: Answer, provenance: dict, key: str | None,
                started: float, generator=None) -> str:
        """`generator`: the model the answer ran on (else none ran: the current one is named)."""
        provenance = {**provenance, "llm_sha256": self.models.llm_sha256(generator),
                      "timings_ms": {"total": round((time.perf_counter() - started) * 1000, 1)},
                      "passages": [{"chunk_id": c.chunk_id, "source": c.source,
                                    "content_hash": sha256_text(c.text)} for c in answer.citations]}
        return self.collection.records.save_answer(self.name, question, answer.query or question,
                                                   answer, provenance, key)


def _as_dict(filt: SearchFilter | None) -> dict | None:
    from dataclasses import asdict

    return asdict(filt) if filt else None
