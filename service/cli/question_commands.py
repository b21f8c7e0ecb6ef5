"""`archivist search`, `ask`, `chat`, `replay`, `eval`: the commands that read."""

from __future__ import annotations

import argparse

from rag.core.errors import ArchivistError
from rag.library import Library
from rag.retrieval.retriever import SearchFilter
from service.cli.output import print_answer, print_json, where


def _filter(args: argparse.Namespace) -> SearchFilter | None:
    filt = SearchFilter(path=args.path, types=tuple(args.type or ()))
    return filt if filt.active else None


def cmd_search(library: Library, args: argparse.Namespace) -> int:
    results = library.collection(args.collection).assistant.search(args.question, args.top_k,
                                                                   _filter(args))
    if args.json:
        print_json({"results": [c.model_dump() for c in results]})
        return 0
    if not results:
        print("No passages: the index is empty. Run `archivist ingest` first.")
    for c in results:
        snippet = " ".join(c.text.split())[:200]
        print(f"[{c.id}] {where(c)} (score {c.score:.2f})\n    {snippet}")
    return 0


def cmd_ask(library: Library, args: argparse.Namespace) -> int:
    assistant = library.collection(args.collection).assistant
    answer = assistant.ask(args.question, args.top_k, filt=_filter(args), debug=args.debug,
                           mode=args.mode)
    if args.json:
        print_json(answer.model_dump())
    else:
        print_answer(answer)
    return 0


def cmd_chat(library: Library, args: argparse.Namespace) -> int:
    assistant = library.collection(args.collection).assistant
    print("Ask about your documents. An empty line or Ctrl-D ends the session.")
    conversation_id = args.conversation
    while True:
        try:
            question = input("\n> ").strip()
        except (EOFError, KeyboardInterrupt):
            print()
            return 0
        if not question:
            if conversation_id:
                print(f"(conversation {conversation_id}; continue it with --conversation)")
            return 0
        try:
            conversation_id, answer = assistant.chat(question, conversation_id, args.top_k)
        except ArchivistError as exc:
            print(f"error: {exc}")
            continue
        print_answer(answer)


def cmd_replay(library: Library, args: argparse.Namespace) -> int:
    print_json(library.collection(args.collection).assistant.replay(args.answer_id))
    return 0


def cmd_eval(library: Library, args: argparse.Namespace) -> int:
    from rag.answering.evaluation import AnswerReport, format_answer_table, format_table

    assistant = library.collection(args.collection).assistant
    reports = assistant.evaluate(args.questions, args.top_k or 10, answers=args.answers,
                                 modes=args.mode)
    if args.json:
        print_json([r.to_dict() for r in reports])
        return 0
    retrieval = [r for r in reports if not isinstance(r, AnswerReport)]
    answers = [r for r in reports if isinstance(r, AnswerReport)]
    print(format_table(retrieval))
    if answers:
        print()
        print(format_answer_table(answers))
    for report in retrieval:
        for miss in report.misses[: args.show_misses]:
            print(f"  miss {report.name} {miss['id']}: {miss['q']}\n"
                  f"       expected {miss['expect']}, got {miss['got']}")
    for report in answers:
        for wrong in report.wrong[: args.show_misses]:
            print(f"  wrong {report.name} ({report.mode}) {wrong['id']}: {wrong['q']}\n"
                  f"       expected {wrong['a']}, got {wrong['got'][:160]!r}")
    return 0
