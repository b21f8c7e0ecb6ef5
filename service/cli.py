"""The `archivist` command.  Each subcommand parses flags, calls the Engine, prints the result."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Sequence

from rag.errors import ArchivistError
from rag.offline import enforce_offline
from rag.settings import load_settings
from rag.retriever import SearchFilter
from rag.types import Answer, Citation
from ingest.pipeline import IngestReport
from service import handoff
from service.engine import Engine
from service.library import Library


def _print_json(data: object) -> None:
    print(json.dumps(data, ensure_ascii=False, indent=2))


def _where(c: Citation) -> str:
    text = c.source + (f", page {c.page}" if c.page is not None else "")
    return text + (f" — {c.heading}" if c.heading else "")


def _print_answer(answer: Answer) -> None:
    print(answer.answer)
    if answer.refused and answer.reason:
        print(f"\n(refused: {answer.reason})")
    if answer.citations:
        print("\nClosest passages:" if answer.refused else "\nSources:")
        for c in answer.citations:
            print(f"  [{c.id}] {_where(c)} (score {c.score:.2f})")
            if c.quote:
                print(f"      \u201c{c.quote}\u201d")
    unsupported = [s.text for s in answer.sentences if not s.supported]
    if unsupported:
        print("\nNot supported by the documents:")
        for sentence in unsupported:
            print(f"  - {sentence}")
    if answer.debug:
        print("\nDebug:", answer.debug.model_dump_json(indent=2))


def cmd_ingest(library: Library, args: argparse.Namespace) -> int:
    """Every collection, or the one named; by the server, while one serves this index."""
    if args.rebuild:
        handoff.refuse_if_serving(library.settings, "`archivist ingest --rebuild`")
    server = None if args.rebuild else handoff.running_server(library.settings)
    if server is not None:
        reports = _handed_off(server, "ingest", args.collection)
    else:
        reports = {name: _ingest_one(library.engine(name), args)
                   for name in ([args.collection] if args.collection else library.names())}
    if args.json:
        _print_json(IngestReport.by_collection(reports))
    else:
        for name, report in reports.items():
            print(f"{name}: {report.summary()}" if len(reports) > 1 else report.summary())
    return 0


def _handed_off(server: handoff.ServerInfo, work: str, collection: str | None) -> dict[str, IngestReport]:
    print(f"The archivist server (pid {server.pid}, {server.url}) owns this index while it runs: "
          f"it does the {work}.", file=sys.stderr)
    result = handoff.run_via(server, work, collection)
    return {name: IngestReport.from_dict(counts) for name, counts in result["collections"].items()}


def _ingest_one(engine: Engine, args: argparse.Namespace):
    progress = None
    bar = None
    if not args.json and sys.stderr.isatty():
        from tqdm import tqdm

        bar = tqdm(unit="file", desc=f"ingest {engine.collection}", file=sys.stderr)

        def progress(done: int, total: int, source: str) -> None:
            bar.total = total
            bar.n = done
            bar.set_postfix_str(source[-40:])  # also redraws

    try:
        return engine.ingest(rebuild=args.rebuild, progress=progress)
    finally:
        if bar:
            bar.n = bar.total or bar.n
            bar.close()


def cmd_keys(library: Library, args: argparse.Namespace) -> int:
    from service.auth import KeyStore

    keys = KeyStore(library.settings.keys_path)
    try:
        if args.action == "create":
            for name in args.collection or []:
                library.engine(name)  # an unknown collection fails here, not at first use
            secret = keys.create(args.role, args.collection, args.note)
            print(secret)
            print("Keep this key: it is not stored and cannot be shown again.", file=sys.stderr)
        elif args.action == "revoke":
            if not args.id or not keys.revoke(args.id):
                raise ArchivistError(f"No active key {args.id!r}.", hint="`archivist keys list` shows them.")
            print(f"revoked {args.id}")
        else:
            rows = keys.list()
            if args.json:
                _print_json(rows)
            for row in rows if not args.json else []:
                state = "revoked" if row["revoked"] else "active"
                print(f"{row['id']}  {row['role']:<7} {state:<8} {','.join(row['collections']):<20} {row['note'] or ''}")
    finally:
        keys.close()
    return 0


def cmd_collections(library: Library, args: argparse.Namespace) -> int:
    if args.action == "create":
        if not args.name:
            raise ArchivistError("Which collection?", hint="archivist collections create NAME")
        engine = library.create(args.name)
        print(f"collection {args.name!r}: put its documents in {engine.data_dir}, then run "
              f"`archivist ingest --collection {args.name}`")
        return 0
    rows = []
    for name in library.names():
        engine = library.engine(name)
        rows.append({"name": name, "folder": str(engine.data_dir), "files": len(engine.documents())})
    if args.json:
        _print_json(rows)
    for row in rows if not args.json else []:
        print(f"{row['name']:<20} {row['files']:>6} files  {row['folder']}")
    return 0


def _filter(args: argparse.Namespace) -> SearchFilter | None:
    filt = SearchFilter(path=args.path, types=tuple(args.type or ()))
    return filt if filt.active else None


def cmd_search(library: Library, args: argparse.Namespace) -> int:
    engine = library.engine(args.collection)
    results = engine.search(args.question, args.top_k, _filter(args))
    if args.json:
        _print_json({"results": [c.model_dump() for c in results]})
        return 0
    if not results:
        print("No passages: the index is empty. Run `archivist ingest` first.")
    for c in results:
        snippet = " ".join(c.text.split())[:200]
        print(f"[{c.id}] {_where(c)} (score {c.score:.2f})\n    {snippet}")
    return 0


def cmd_ask(library: Library, args: argparse.Namespace) -> int:
    engine = library.engine(args.collection)
    answer = engine.ask(args.question, args.top_k, filt=_filter(args), debug=args.debug)
    if args.json:
        _print_json(answer.model_dump())
    else:
        _print_answer(answer)
    return 0


def cmd_chat(library: Library, args: argparse.Namespace) -> int:
    engine = library.engine(args.collection)
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
            conversation_id, answer = engine.chat(question, conversation_id, args.top_k)
        except ArchivistError as exc:
            print(f"error: {exc}")
            continue
        _print_answer(answer)


def cmd_replay(library: Library, args: argparse.Namespace) -> int:
    engine = library.engine(args.collection)
    _print_json(engine.replay(args.answer_id))
    return 0


def cmd_serve(library: Library, args: argparse.Namespace) -> int:
    import ipaddress

    import uvicorn

    from service.app import create_app
    from service.auth import KeyStore
    from service.logs import configure_logging

    host = args.host or library.settings.host
    port = args.port or library.settings.port
    # The app checks request Host headers against the address it is bound to.
    settings = library.settings.model_copy(update={"host": host, "port": port})
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    keys = KeyStore(settings.keys_path)
    try:
        protected = keys.any_keys()
    finally:
        keys.close()
    if not protected and not loopback:
        raise ArchivistError(f"Refusing to serve on {host} without API keys: anyone who can reach "
                             "it could read every document.",
                             hint="Create a key first (`archivist keys create --role admin`), or "
                                  "serve on 127.0.0.1.")
    configure_logging(settings.log_format)
    handoff.ensure_not_served(settings)
    app = create_app(settings, library=library)
    app.state.serve_at = (host, port)  # its lifespan registers it: `archivist ingest` hands over
    # log_config=None: uvicorn's loggers go through our handler; our middleware writes the
    # access lines (with request id and route), so uvicorn's own are off.
    uvicorn.run(app, host=host, port=port, log_config=None, access_log=False)
    return 0


def cmd_eval(library: Library, args: argparse.Namespace) -> int:
    engine = library.engine(args.collection)
    from rag.evaluation import AnswerReport, format_answer_table, format_table

    reports = engine.evaluate(args.questions, args.top_k or 10, answers=args.answers)
    if args.json:
        _print_json([r.to_dict() for r in reports])
        return 0
    retrieval = [r for r in reports if not isinstance(r, AnswerReport)]
    answers = [r for r in reports if isinstance(r, AnswerReport)]
    print(format_table(retrieval))
    if answers:
        print()
        print(format_answer_table(answers))
    reports = retrieval
    for report in reports:
        for miss in report.misses[: args.show_misses]:
            print(f"  miss {report.name} {miss['id']}: {miss['q']}\n"
                  f"       expected {miss['expect']}, got {miss['got']}")
    return 0


def cmd_doctor(library: Library, args: argparse.Namespace) -> int:
    if args.offline:
        return _doctor_offline(library.default, args)
    from service.doctor import run_checks

    report = run_checks(library.default)
    if args.json:
        _print_json(report)
    else:
        for section, content in report.items():
            print(f"== {section}")
            _print_json(content)
    return 0 if report["offline"]["ok"] else 1


def _doctor_offline(engine: Engine, args: argparse.Namespace) -> int:
    from service.offline_check import format_report, offline_checks, report

    checks, attempts = offline_checks(engine.settings)
    result = report(checks, attempts)
    if args.json:
        _print_json(result)
    else:
        print(format_report(checks, attempts))
    return 0 if result["ok"] else 1


def cmd_reindex(library: Library, args: argparse.Namespace) -> int:
    """Every collection, or the one named; each switches to its new index when it is complete.
    By the server, while one serves this index."""
    if (server := handoff.running_server(library.settings)) is not None:
        for name, report in _handed_off(server, "reindex", args.collection).items():
            print(f"{name}: {report.summary()}")
        return 0
    for name in [args.collection] if args.collection else library.names():
        report = library.engine(name).reindex()
        print(f"{name}: {report.summary()}")
    return 0


def cmd_export(library: Library, args: argparse.Namespace) -> int:
    from service.snapshot import export_index

    # A serving process keeps part of Chroma's vector index in memory and persists it in batches,
    # so files copied from another process may lag behind it; stop it first, as for import.
    handoff.refuse_if_serving(library.settings, "`archivist export`")
    manifest = export_index(library.settings, args.path)
    if args.json:
        _print_json({k: v for k, v in manifest.items() if k != "files"})
    else:
        counts = ", ".join(f"{n}: {c['chunks']} chunks" for n, c in manifest["collections"].items())
        print(f"exported {len(manifest['files'])} files ({counts}) to {args.path}")
    return 0


def cmd_import(library: Library, args: argparse.Namespace) -> int:
    from service.snapshot import import_index

    handoff.refuse_if_serving(library.settings, "`archivist import`")
    library.close()
    manifest = import_index(library.settings, args.path, force=args.force)
    counts = ", ".join(f"{n}: {c['chunks']} chunks" for n, c in manifest["collections"].items())
    print(f"imported {args.path} (made {manifest['created_at']} by archivist "
          f"{manifest['archivist_version']}; {counts}) into {library.settings.index_dir}")
    return 0


_COLLECTION_HELP = "collection to use (default: ARCHIVIST_COLLECTION, 'default')"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="archivist", description="Offline question answering over the documents in a folder.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("ingest", help="make the index match the data folder")
    p.add_argument("--data-dir", type=Path, help="folder to index (default: ARCHIVIST_DATA_DIR)")
    p.add_argument("--collection", help="only this collection (default: all of them)")
    p.add_argument("--json", action="store_true", help="print one JSON object with the counts")
    p.add_argument("--rebuild", action="store_true",
                   help="discard the index and embed everything again (after changing models)")
    p.set_defaults(func=cmd_ingest)

    for name, func, text in (("search", cmd_search, "rank passages for a question (no model)"),
                             ("ask", cmd_ask, "answer a question with citations")):
        p = sub.add_parser(name, help=text)
        p.add_argument("question")
        p.add_argument("--collection", help=_COLLECTION_HELP)
        p.add_argument("--top-k", type=int, help="passages to retrieve (default: ARCHIVIST_TOP_K)")
        p.add_argument("--json", action="store_true", help="print JSON")
        p.add_argument("--path", help="only files under this path prefix, or matching this glob "
                                       "(e.g. 'reports/' or 'finance/**/*.pdf')")
        p.add_argument("--type", action="append", metavar="EXT",
                       help="only files of this type (e.g. pdf); repeatable")
        if name == "ask":
            p.add_argument("--debug", action="store_true",
                           help="include prompt packing details (what was cut to fit the context)")
        p.set_defaults(func=func)

    p = sub.add_parser("eval", help="measure retrieval on question files (JSON Lines)")
    p.add_argument("questions", nargs="+", type=Path,
                   help='files of {"id", "q", "expect": [file stems]} lines; no expect = unanswerable')
    p.add_argument("--collection", help=_COLLECTION_HELP)
    p.add_argument("--top-k", type=int, help="results retrieved per question (default 10)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--show-misses", type=int, default=0, metavar="N",
                   help="list up to N missed questions per file")
    p.add_argument("--answers", action="store_true",
                   help="also ask the model every question: refusals, supported sentences, "
                        "citation precision (slow)")
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("chat", help="interactive questions that keep the conversation")
    p.add_argument("--collection", help=_COLLECTION_HELP)
    p.add_argument("--top-k", type=int)
    p.add_argument("--conversation", help="continue this conversation id")
    p.set_defaults(func=cmd_chat)

    p = sub.add_parser("replay", help="re-run a recorded answer; report what changed since")
    p.add_argument("answer_id")
    p.add_argument("--collection", help=_COLLECTION_HELP)
    p.set_defaults(func=cmd_replay)

    p = sub.add_parser("serve", help="serve the HTTP API")
    p.add_argument("--host", help="address to bind (default: ARCHIVIST_HOST, 127.0.0.1)")
    p.add_argument("--port", type=int, help="port (default: ARCHIVIST_PORT, 8000)")
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("collections", help="list collections, or create one")
    p.add_argument("action", choices=["list", "create"], nargs="?", default="list")
    p.add_argument("name", nargs="?", help="collection to create: data/NAME/ becomes its folder")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_collections)

    p = sub.add_parser("keys", help="API keys: list, create (printed once), revoke")
    p.add_argument("action", choices=["list", "create", "revoke"], nargs="?", default="list")
    p.add_argument("id", nargs="?", help="key id to revoke")
    p.add_argument("--role", choices=["reader", "editor", "admin"], default="reader")
    p.add_argument("--collection", action="append", help="collection granted (repeatable; default: all)")
    p.add_argument("--note", help="who or what the key is for")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_keys)

    p = sub.add_parser("reindex", help="rebuild an index (new embedding model or chunking) while "
                                       "searches keep using the old one until the new one is ready")
    p.add_argument("--collection", help="only this collection (default: all of them)")
    p.set_defaults(func=cmd_reindex)

    p = sub.add_parser("export", help="write the whole index (every collection, answers, keys) "
                                      "to one .tar.gz snapshot")
    p.add_argument("path", type=Path)
    p.add_argument("--json", action="store_true", help="print the snapshot's manifest")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("import", help="replace the index with a snapshot made by `archivist export`")
    p.add_argument("path", type=Path)
    p.add_argument("--force", action="store_true",
                   help="replace a non-empty index (kept as a .bak folder until the import succeeds)")
    p.set_defaults(func=cmd_import)

    p = sub.add_parser("doctor", help="configuration, model files, offline check, GPU support")
    p.add_argument("--json", action="store_true")
    p.add_argument("--offline", action="store_true",
                   help="only check that every model, tokenizer and parser resource is on disk "
                        "(loads no model; exit status 1 if anything is missing)")
    p.set_defaults(func=cmd_doctor)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    enforce_offline()
    library = None
    try:
        library = Library(load_settings(data_dir=getattr(args, "data_dir", None)))
        return args.func(library, args)
    except ArchivistError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        if exc.hint:
            print(f"hint: {exc.hint}", file=sys.stderr)
        return 2
    finally:
        if library:
            library.close()


if __name__ == "__main__":
    sys.exit(main())
