"""`archivist audit keygen | verify | list | export | prune | rotate-key | checkpoint`.

`verify` needs no encryption key and writes nothing, so an auditor can run it on a copy; `list`
without the key shows everything but the sealed parts.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rag.audit import upkeep
from rag.audit.bundles import BundleError, export_bundle, verify_bundle
from rag.audit.checkpoints import Signer, Verifier, write_signing_keys
from rag.audit.events import Actor, parse_time
from rag.audit.log import AuditLog
from rag.audit.reading import EventQuery, check_sealed, list_events, verify_log
from rag.core.errors import ArchivistError
from rag.core.settings import Settings
from rag.library import Library
from rag.storage.answer_records import Records
from rag.storage.sealing import Keyring, Sealer, write_key_file
from service import handoff
from service.cli.output import print_json


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("audit", help="the audit log: keys, verify, list, export, prune, rotate-key")
    actions = p.add_subparsers(dest="audit_command", required=True)  # `list --action` is a filter
    a = actions.add_parser("keygen", help="write a new encryption key file (mode 0600; never "
                                          "overwrites), or with --signing an Ed25519 signing key")
    a.add_argument("file", type=Path)
    a.add_argument("--signing", action="store_true",
                   help="a checkpoint signing key: FILE (private, 0600) and FILE.pub (public)")
    a = actions.add_parser("verify", help="check the chain and checkpoints (no encryption key "
                                          "needed); exit 0 intact, 1 naming the first bad event")
    a.add_argument("--bundle", type=Path, help="verify a bundle from `audit export` instead")
    a.add_argument("--public-key", type=Path, help="the signing key's .pub file (default: the "
                                                   "public half of ARCHIVIST_AUDIT_SIGNING_KEY_FILE)")
    a.add_argument("--expect-head", metavar="HASH", help="a head hash noted earlier: the chain "
                                                         "must still contain it (catches a cut-off end)")
    a.add_argument("--decrypt", action="store_true", help="also open every sealed part with "
                   "ARCHIVIST_AUDIT_KEY_FILE and check it against the chain")
    a.add_argument("--json", action="store_true")
    a = actions.add_parser("list", help="events, newest first (sealed parts opened with the key)")
    for name in ("since", "until", "actor", "collection", "action", "outcome"):
        a.add_argument(f"--{name}")
    a.add_argument("--limit", type=int, default=100)
    a.add_argument("--json", action="store_true")
    a = actions.add_parser("export", help="events since a time, with chain and checkpoints, to a "
                                          "bundle that `audit verify --bundle` checks elsewhere")
    a.add_argument("out", type=Path)
    a.add_argument("--since", help="from this time (ISO 8601); default: every event")
    a = actions.add_parser("prune", help="remove events before a date, leaving a signed checkpoint")
    a.add_argument("--before", required=True, help="ISO 8601 date or time")
    a = actions.add_parser("rotate-key", help="re-seal everything with a new key file (the chain "
                                              "is unchanged); then point ARCHIVIST_AUDIT_KEY_FILE at it")
    a.add_argument("new_key", type=Path)
    actions.add_parser("checkpoint", help="sign the chain's head now and print it")
    p.set_defaults(func=cmd_audit)


def cmd_audit(library: Library, args: argparse.Namespace) -> int:
    return {"keygen": _keygen, "verify": _verify, "list": _list, "export": _export,
            "prune": _prune, "rotate-key": _rotate,
            "checkpoint": _checkpoint}[args.audit_command](library, args)


def _plain_log(settings: Settings) -> AuditLog:
    """The log without the key check: for what reads or writes no sealed part."""
    if not settings.db_url and not (settings.index_dir / "audit.sqlite3").exists():
        raise ArchivistError(f"There is no audit log in {settings.index_dir}.",
                             hint="Check ARCHIVIST_INDEX_DIR (or ARCHIVIST_DB_URL).")
    return AuditLog.configured(settings)


def _keygen(library: Library, args: argparse.Namespace) -> int:
    if args.signing:
        fingerprint = write_signing_keys(args.file)
        print(f"wrote {args.file} (private, keep it on the server) and {args.file}.pub (give it to "
              f"auditors); fingerprint {fingerprint}")
    else:
        key_id = write_key_file(args.file)
        print(f"wrote {args.file} (key id {key_id}); keep a copy safe: what it seals cannot be "
              "read without it")
    return 0


def _public_key(settings: Settings, given: Path | None) -> Verifier | None:
    if given:
        return Verifier.from_file(given)
    signing = settings.audit.audit_signing_key_file
    return Signer.from_file(signing).public if signing else None


def _verify(library: Library, args: argparse.Namespace) -> int:
    settings = library.settings
    public_key = _public_key(settings, args.public_key)
    extra: list[str] = []
    if args.bundle:
        try:
            report = verify_bundle(args.bundle, public_key, args.expect_head)
        except BundleError as exc:
            print(f"NOT INTACT: {exc.message}", file=sys.stderr)
            if exc.hint:
                print(f"hint: {exc.hint}", file=sys.stderr)
            return 1
    else:
        log = _plain_log(settings)
        try:
            report = verify_log(log, public_key, args.expect_head)
            if args.decrypt and report.ok:
                log.keyring = Keyring.from_file(settings.audit.audit_key_file)
                checked, bad, why = check_sealed(log)
                if bad is not None:
                    report.bad_seq, report.problem = bad, f"sealed part: {why}"
                extra.append(f"sealed parts opened and checked: {checked}")
        finally:
            log.close()
    if args.json:
        print_json(report.to_dict())
    else:
        print("\n".join(report.lines() + extra), file=sys.stdout if report.ok else sys.stderr)
    return 0 if report.ok else 1


def _list(library: Library, args: argparse.Namespace) -> int:
    query = EventQuery(args.since, args.until, args.actor, args.collection, args.action,
                       args.outcome, None, args.limit)
    keyed = library.settings.audit.audit_key_file is not None
    log = library.audit if keyed else _plain_log(library.settings)
    try:
        listing = list_events(log, query, open_secrets=keyed)
        log.append(Actor.local_cli(), "audit.list", "ok", None,
                   {"filters": query.to_dict(), "events": len(listing["events"])})
        listing["head"] = dict(zip(("seq", "hash"), log.head()))  # this read's record included
    finally:
        if not keyed:
            log.close()
    if args.json:
        print_json(listing)
        return 0
    for e in listing["events"]:
        where = f" [{e['collection']}]" if e["collection"] else ""
        print(f"{e['seq']:>7} {e['at']} {e['actor']} ({e['role']}){where} {e['action']} "
              f"{e['outcome']} {_brief(e)}")
    head = listing["head"]
    print(f"head: event {head['seq']}, hash {head['hash']}", file=sys.stderr)
    return 0


def _brief(event: dict) -> str:
    secret = event.get("secret") or {}
    text = secret.get("question") or ""
    details = event["details"]
    if "answer_id" in details:
        text += f" -> answer {details['answer_id']}"
    elif details:
        text += " " + ", ".join(f"{k}={v}" for k, v in details.items()
                                if v is not None and not isinstance(v, (dict, list)))[:160]
    if event.get("sealed") and not secret:
        text = "(sealed) " + text
    return text.strip()


def _export(library: Library, args: argparse.Namespace) -> int:
    since = parse_time(args.since) if args.since else None
    log = _plain_log(library.settings)
    try:
        log.append(Actor.local_cli(), "audit.export", "ok", None,
                   {"since": since, "file": args.out.name})
        checkpoint = log.checkpoint("export") if log.signer else None
        header = export_bundle(log, args.out, since, checkpoint.seq if checkpoint else None)
    finally:
        log.close()
    print(f"exported events {header['first_seq']}..{header['last_seq']} ({header['events']}) "
          f"and {header['checkpoints']} checkpoints to {args.out}")
    if checkpoint is None:
        print("warning: no signing key, so no checkpoint vouches for the end of the bundle",
              file=sys.stderr)
    return 0


def _prune(library: Library, args: argparse.Namespace) -> int:
    log = _plain_log(library.settings)
    records = Records(library.settings.records_db)  # deleting rows needs no key
    try:
        done = upkeep.prune(log, parse_time(args.before), Actor.local_cli(), records)
    finally:
        log.close()
        records.close()
    gone = done["records_removed"]
    print(f"removed {done['removed']} events (through event {done['removed_through']}); a signed "
          f"checkpoint keeps their last hash {done['anchor_hash']}; removed {gone['answers']} "
          f"recorded answers, {gone['turns']} conversation turns and {gone['conversations']} "
          "conversations made before it")
    return 0


def _rotate(library: Library, args: argparse.Namespace) -> int:
    settings = library.settings
    handoff.refuse_if_serving(settings, "`archivist audit rotate-key`")
    new = Sealer.from_file(args.new_key)
    keyring = Keyring.from_file(settings.audit.audit_key_file)
    library.close()  # its stores would hold the old key
    log, records = AuditLog.configured(settings, keyring), Records(settings.records_db, keyring)
    try:
        done = upkeep.rotate_key(log, records, new, Actor.local_cli())
    finally:
        log.close()
        records.close()
    print(f"re-sealed {done['events']} audit events and {done['answers']} answers with key "
          f"{done['to_key']}; now set ARCHIVIST_AUDIT_KEY_FILE={args.new_key} (other servers "
          "sharing the database refuse to write until they restart with it)")
    return 0


def _checkpoint(library: Library, args: argparse.Namespace) -> int:
    log = _plain_log(library.settings)
    try:
        made = log.checkpoint("manual")
    finally:
        log.close()
    if made is None:
        print("the audit log is empty: nothing to sign")
    else:
        print(f"checkpoint at event {made.seq}: head {made.head_hash}, signed by key "
              f"{made.key_fingerprint}")
    return 0
