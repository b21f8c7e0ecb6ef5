"""The `archivist` command.  Each subcommand parses flags, calls rag/ or ingest/, prints the
result: the commands live in question_commands (read), index_commands (write) and
admin_commands (serve, keys, doctor), model_commands (models) and audit_commands (audit)."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Sequence

from rag.core.errors import ArchivistError
from rag.core.offline import enforce_offline
from rag.core.settings import Settings, load_settings
from rag.library import Library
from rag.models.loaded import for_bulk_embedding
from service.cli import audit_commands, model_commands
from service.cli.admin_commands import cmd_doctor, cmd_keys, cmd_serve
from service.cli.index_commands import (cmd_collections, cmd_export, cmd_import, cmd_ingest,
                                        cmd_reindex)
from service.cli.question_commands import cmd_ask, cmd_chat, cmd_eval, cmd_replay, cmd_search


def make_library(settings: Settings) -> Library:
    """The library a command works on (tests/fault_cli.py swaps in fake models here)."""
    return Library(settings)


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
            p.add_argument("--mode", choices=["auto", "generative", "extractive"],
                           help="how to write the answer (default: ARCHIVIST_ANSWER_MODE, auto)")
        p.set_defaults(func=func)

    p = sub.add_parser("eval", help="measure retrieval (and answers) on question files (JSON Lines)")
    p.add_argument("questions", nargs="+", type=Path,
                   help='files of {"id", "q", "expect": [file stems], "a": [answer strings]} lines; '
                        'no expect = unanswerable')
    p.add_argument("--collection", help=_COLLECTION_HELP)
    p.add_argument("--top-k", type=int, help="results retrieved per question (default 10)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--show-misses", type=int, default=0, metavar="N",
                   help="list up to N missed questions per file")
    p.add_argument("--answers", action="store_true",
                   help="also answer every question: right answers (with \"a\"), refusals, "
                        "invented facts, supported sentences, citation precision (slow)")
    p.add_argument("--mode", action="append", choices=["auto", "generative", "extractive"],
                   help="with --answers: answer in this mode (repeatable; default: "
                        "ARCHIVIST_ANSWER_MODE)")
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
    p.add_argument("--embed-model", help="the new collection's embedding model (default: "
                                         "ARCHIVIST_EMBED_MODEL; `archivist models list` names them)")
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
    p.add_argument("--embed-model", help="rebuild the collection with this embedding model and "
                                         "make it its choice (needs --collection)")
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

    model_commands.add_parser(sub)
    audit_commands.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    enforce_offline()
    library = None
    try:
        settings = load_settings(data_dir=getattr(args, "data_dir", None))
        if args.command in ("ingest", "reindex"):  # embeds documents, never generates
            settings = for_bulk_embedding(settings)
        library = make_library(settings)
        return args.func(library, args)
    except ArchivistError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        if exc.hint:
            print(f"hint: {exc.hint}", file=sys.stderr)
        return 2
    finally:
        if library:
            library.close()
