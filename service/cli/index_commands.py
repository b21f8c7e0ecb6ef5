"""`archivist ingest`, `reindex`, `collections`, `export`, `import`: the commands that write."""

from __future__ import annotations

import argparse
import sys

from ingest.indexer import Indexer
from ingest.pipeline import IngestReport
from rag.audit.events import Actor
from rag.audit.log import AuditLog
from rag.core.errors import ArchivistError
from rag.library import Library
from service import handoff
from service.cli.output import print_json


def cmd_ingest(library: Library, args: argparse.Namespace) -> int:
    """Every collection, or the one named; by the server, while one serves this index."""
    if args.rebuild:
        handoff.refuse_if_serving(library.settings, "`archivist ingest --rebuild`")
    server = None if args.rebuild else handoff.running_server(library.settings)
    if server is not None:
        reports = _handed_off(server, "ingest", args.collection)
    else:
        reports = {name: _ingest_one(Indexer(library.collection(name)), args)
                   for name in ([args.collection] if args.collection else library.names())}
    if args.json:
        print_json(IngestReport.by_collection(reports))
    else:
        for name, report in reports.items():
            print(f"{name}: {report.summary()}" if len(reports) > 1 else report.summary())
        for name in reports:  # when the documents suit the other model better (also in doctor)
            if advice := library.collection(name).model_advice():
                print(f"tip: {name}: {advice}", file=sys.stderr)
    return 0


def _handed_off(server: handoff.ServerInfo, work: str, collection: str | None,
                body: dict | None = None) -> dict[str, IngestReport]:
    print(f"The archivist server (pid {server.pid}, {server.url}) owns this index while it runs: "
          f"it does the {work}.", file=sys.stderr)
    result = handoff.run_via(server, work, collection, body=body)
    return {name: IngestReport.from_dict(counts) for name, counts in result["collections"].items()}


def _ingest_one(indexer: Indexer, args: argparse.Namespace) -> IngestReport:
    progress = None
    bar = None
    if not args.json and sys.stderr.isatty():
        from tqdm import tqdm

        bar = tqdm(unit="file", desc=f"ingest {indexer.name}", file=sys.stderr)

        def progress(done: int, total: int, source: str) -> None:
            bar.total = total
            bar.n = done
            bar.set_postfix_str(source[-40:])  # also redraws

    try:
        return indexer.ingest(rebuild=args.rebuild, progress=progress)
    finally:
        if bar:
            bar.n = bar.total or bar.n
            bar.close()


def cmd_reindex(library: Library, args: argparse.Namespace) -> int:
    """Every collection, or the one named; each switches to its new index when it is complete.
    By the server, while one serves this index."""
    model = getattr(args, "embed_model", None)
    if model and not args.collection:
        raise ArchivistError("--embed-model changes one collection's model: which one?",
                             hint=f"archivist reindex --collection NAME --embed-model {model}")
    if (server := handoff.running_server(library.settings)) is not None:
        body = {"collection": args.collection, "embed_model": model} if model else None
        for name, report in _handed_off(server, "reindex", args.collection, body).items():
            print(f"{name}: {report.summary()}")
        return 0
    for name in [args.collection] if args.collection else library.names():
        report = Indexer(library.collection(name)).reindex(
            embed_model=model, choose=lambda chosen, name=name: library.choose_embed_model(name, chosen))
        print(f"{name}: {report.summary()}")
    return 0


def cmd_collections(library: Library, args: argparse.Namespace) -> int:
    if args.action == "create":
        if not args.name:
            raise ArchivistError("Which collection?", hint="archivist collections create NAME")
        model = getattr(args, "embed_model", None)
        details = {"embed_model": model} if model else None
        with library.audit.operation(Actor.local_cli(), "collection.create", args.name, details):
            collection = library.create(args.name, model)
        print(f"collection {args.name!r} ({collection.embed_model}): put its documents in "
              f"{collection.data_dir}, then run `archivist ingest --collection {args.name}`")
        return 0
    rows = []
    for name in library.names():
        collection = library.collection(name)
        rows.append({"name": name, "folder": str(collection.data_dir),
                     "files": len(Indexer(collection).documents()),
                     "embed_model": collection.embed_model})
    if args.json:
        print_json(rows)
    for row in rows if not args.json else []:
        print(f"{row['name']:<20} {row['files']:>6} files  {row['embed_model']:<24} {row['folder']}")
    return 0


def cmd_export(library: Library, args: argparse.Namespace) -> int:
    from ingest.snapshot import export_index

    # A serving process keeps part of Chroma's vector index in memory and persists it in batches,
    # so files copied from another process may lag behind it; stop it first, as for import.
    handoff.refuse_if_serving(library.settings, "`archivist export`")
    with library.audit.operation(Actor.local_cli(), "index.export",
                                 details={"file": str(args.path)}) as result:
        manifest = export_index(library.settings, args.path)
        result["collections"] = manifest["collections"]
    if args.json:
        print_json({k: v for k, v in manifest.items() if k != "files"})
    else:
        counts = ", ".join(f"{n}: {c['chunks']} chunks" for n, c in manifest["collections"].items())
        print(f"exported {len(manifest['files'])} files ({counts}) to {args.path}")
    return 0


def cmd_import(library: Library, args: argparse.Namespace) -> int:
    from ingest.snapshot import import_index

    handoff.refuse_if_serving(library.settings, "`archivist import`")
    library.close()  # the records are replaced: nothing may hold them open
    # The audit log is never replaced by an import (ingest/snapshot.py): it records the import.
    log = AuditLog.configured(library.settings)
    try:
        with log.operation(Actor.local_cli(), "index.import",
                           details={"file": str(args.path), "force": args.force}) as result:
            manifest = import_index(library.settings, args.path, force=args.force)
            result.update({"made": manifest["created_at"], "collections": manifest["collections"]})
    finally:
        log.close()
    counts = ", ".join(f"{n}: {c['chunks']} chunks" for n, c in manifest["collections"].items())
    print(f"imported {args.path} (made {manifest['created_at']} by archivist "
          f"{manifest['archivist_version']}; {counts}) into {library.settings.index_dir}")
    restored = manifest["restored"]
    if restored["chosen"]:
        print("embedding model chosen as the archive's vectors need it: " + "; ".join(restored["chosen"]))
    for name in restored["missing"]:
        print(f"warning: collection {name!r} has no folder under {library.settings.data_dir}: "
              f"restore its folder (its documents and .collection marker) to use it",
              file=sys.stderr)
    return 0
