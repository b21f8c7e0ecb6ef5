"""`archivist serve`, `keys`, `doctor`: running the server and looking after it."""

from __future__ import annotations

import argparse
import sys

from rag.audit.events import Actor
from rag.core.errors import ArchivistError
from rag.library import Library
from service import handoff
from service.cli.output import print_json


def cmd_serve(library: Library, args: argparse.Namespace) -> int:
    import ipaddress

    import uvicorn

    from service.app import create_app
    from service.auth import KeyStore
    from service.logs import configure_logging

    server = library.settings.server
    host, port = args.host or server.host, args.port or server.port
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    keys = KeyStore(library.settings.keys_db)
    try:
        protected = keys.any_keys()
    finally:
        keys.close()
    if not protected and not loopback:
        raise ArchivistError(f"Refusing to serve on {host} without API keys: anyone who can reach "
                             "it could read every document.",
                             hint="Create a key first (`archivist keys create --role admin`), or "
                                  "serve on 127.0.0.1.")
    configure_logging(server.log_format)
    handoff.ensure_not_served(library.settings)
    # The app checks request Host headers against the address it is bound to.
    settings = library.settings.model_copy(update={"server": server.model_copy(
        update={"host": host, "port": port})})
    app = create_app(settings, library=library)
    app.state.serve_at = (host, port)  # its lifespan registers it: `archivist ingest` hands over
    # log_config=None: uvicorn's loggers go through our handler; our middleware writes the
    # access lines (with request id and route), so uvicorn's own are off.
    uvicorn.run(app, host=host, port=port, log_config=None, access_log=False)
    return 0


def cmd_keys(library: Library, args: argparse.Namespace) -> int:
    from service.auth import KeyStore, key_id_of

    keys = KeyStore(library.settings.keys_db)
    try:
        if args.action == "create":
            for name in args.collection or []:
                library.collection(name)  # an unknown collection fails here, not at first use
            details = {"role": args.role, "collections": args.collection, "note": args.note}
            with library.audit.operation(Actor.local_cli(), "key.create", details=details) as result:
                secret = keys.create(args.role, args.collection, args.note)
                result["key_id"] = key_id_of(secret)
            print(secret)
            print("Keep this key: it is not stored and cannot be shown again.", file=sys.stderr)
        elif args.action == "revoke":
            with library.audit.operation(Actor.local_cli(), "key.revoke", details={"key_id": args.id}):
                if not args.id or not keys.revoke(args.id):
                    raise ArchivistError(f"No active key {args.id!r}.",
                                         hint="`archivist keys list` shows them.")
            print(f"revoked {args.id}")
        else:
            rows = keys.list()
            if args.json:
                print_json(rows)
            for row in rows if not args.json else []:
                state = "revoked" if row["revoked"] else "active"
                print(f"{row['id']}  {row['role']:<7} {state:<8} {','.join(row['collections']):<20} {row['note'] or ''}")
    finally:
        keys.close()
    return 0


def cmd_doctor(library: Library, args: argparse.Namespace) -> int:
    if args.offline:
        from service.offline_check import format_report, offline_checks, report

        checks, attempts = offline_checks(library.settings)
        result = report(checks, attempts)
        if args.json:
            print_json(result)
        else:
            print(format_report(checks, attempts))
        return 0 if result["ok"] else 1
    from service.doctor import run_checks

    report = run_checks(library)
    if args.json:
        print_json(report)
    else:
        for section, content in report.items():
            print(f"== {section}")
            print_json(content)
    return 0 if report["offline"]["ok"] else 1
