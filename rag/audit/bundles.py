"""`archivist audit export`: the events since a time, as stored (sealed parts stay sealed), with
the chain and the signed checkpoints, in one JSON Lines file that `archivist audit verify
--bundle FILE --public-key KEY.pub` checks on another machine, without the database or any key
but the public one.

    {"format": "archivist-audit-bundle", "version": 1, "first_seq": ..., "last_seq": ..., ...}
    {"event": {"seq": ..., "at": ..., ..., "prev_hash": ..., "hash": ...}}      one per event
    {"checkpoint": {"seq": ..., "head_hash": ..., "signature": ...}}             one per checkpoint
    {"end": {"lines": N, "sha256": "..."}}                                        lines before it

The end record makes a truncated file (an interrupted copy) plain; its checksum is no seal (anyone
can recompute it): the chain and the checkpoints' signatures are what prove the events.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from rag.audit.checkpoints import CHECKPOINT_COLUMNS, Checkpoint, Verifier
from rag.audit.events import COLUMNS, now
from rag.audit.log import AuditLog
from rag.audit.verification import Report, verify_chain
from rag.core.errors import ArchivistError

FORMAT = "archivist-audit-bundle"
VERSION = 1
_HINT = "Ask for the bundle again (`archivist audit export`), or use another copy."


class BundleError(ArchivistError):
    """A file that is not a readable audit bundle."""


def export_bundle(log: AuditLog, path: Path, since: str | None = None,
                  through_seq: int | None = None) -> dict:
    """Write the events from the first at or after `since` (all: None) through `through_seq`
    (the head: None) to `path`; returns the header."""
    first = log.first_seq_since(since) if since else 1
    last = through_seq if through_seq is not None else log.head()[0]
    if first is None or first > last:
        first, last = last + 1, last  # nothing in range: a bundle of no events
    checkpoints = [c for c in log.checkpoints(max(first - 1, 0)) if c.seq <= last]
    header = {"format": FORMAT, "version": VERSION, "created": now(), "since": since,
              "first_seq": first, "last_seq": last, "events": max(0, last - first + 1),
              "checkpoints": len(checkpoints),
              "chain": "sha256 of JSON [1, seq, at, actor, role, collection, request_id, action, "
                       "outcome, details, secret_digest, prev_hash]; see README: Audit trail"}
    path = Path(path)
    partial = path.with_name(path.name + ".partial")
    digest = hashlib.sha256()
    lines = 0
    with open(partial, "w", encoding="utf-8") as out:
        def write(record: dict) -> None:
            nonlocal lines
            line = json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n"
            digest.update(line.encode("utf-8"))
            out.write(line)
            lines += 1

        write(header)
        for row in log.rows(first - 1, last, sealed=True):
            write({"event": dict(zip(COLUMNS, row))})
        for c in checkpoints:
            write({"checkpoint": c.to_dict()})
        out.write(json.dumps({"end": {"lines": lines, "sha256": digest.hexdigest()}}) + "\n")
        out.flush()
        os.fsync(out.fileno())
    os.replace(partial, path)
    return header


def verify_bundle(path: Path, public_key: Verifier | None = None,
                  expect_head: str | None = None) -> Report:
    """The bundle's chain and checkpoints checked (BundleError if it is not a bundle at all)."""
    header, rows, checkpoints, damage = _read(Path(path))
    report = verify_chain(rows, checkpoints, public_key, expect_head, partial=True)
    if report.ok and damage:
        report.problem = damage
    elif report.ok and report.events != header.get("events"):
        report.problem = (f"the header announces {header.get('events')} events, the bundle holds "
                          f"{report.events}: events were removed or added")
    return report


def _read(path: Path) -> tuple[dict, list[tuple], list[Checkpoint], str | None]:
    try:
        handle = open(path, encoding="utf-8")
    except OSError as exc:
        raise BundleError(f"Cannot read {path}: {exc.strerror}.", hint="Check the path.") from None
    rows: list[tuple] = []
    checkpoints: list[Checkpoint] = []
    digest = hashlib.sha256()
    header = end = None
    number = 0
    with handle:
        try:
            for number, line in enumerate(handle, start=1):
                if end is not None:
                    return header, rows, checkpoints, (f"the bundle goes on after its end record "
                                                       f"(line {number}): lines were appended")
                try:
                    record = _record(line, number, path)
                except _Truncated as cut:
                    if header is None:
                        raise
                    return header, rows, checkpoints, f"truncated: {cut.message}"
                if "end" in record:
                    end = record["end"]
                    continue
                digest.update(line.encode("utf-8"))
                if number == 1:
                    header = record
                    if header.get("format") != FORMAT:
                        raise BundleError(f"{path} is not an audit bundle.",
                                          hint="Make bundles with `archivist audit export`.")
                    if header.get("version") != VERSION:
                        raise BundleError(f"{path} is a version {header.get('version')!r} bundle; "
                                          f"this archivist reads version {VERSION}.", hint=_HINT)
                elif "event" in record:
                    rows.append(_typed(tuple(record["event"].get(c) for c in COLUMNS), number, path))
                elif "checkpoint" in record:
                    fields = _typed(tuple(record["checkpoint"][c] for c in CHECKPOINT_COLUMNS),
                                    number, path)
                    checkpoints.append(Checkpoint(*fields))
                else:
                    raise BundleError(f"Line {number} of {path} is neither an event nor a "
                                      "checkpoint.", hint=_HINT)
        except UnicodeDecodeError:
            raise BundleError(f"{path} is not a text file: it is not an audit bundle.", hint=_HINT) from None
        except (KeyError, TypeError):
            raise BundleError(f"Line {number} of {path} lacks fields of an event or checkpoint.",
                              hint=_HINT) from None
    if header is None:
        raise BundleError(f"{path} is empty.", hint=_HINT)
    if end is None:
        return header, rows, checkpoints, (f"truncated: the bundle stops after line {number} "
                                           "without its end record (an interrupted copy?)")
    if end.get("lines") != number - 1 or end.get("sha256") != digest.hexdigest():
        return header, rows, checkpoints, ("altered: the bundle's lines no longer match its end "
                                           "record's checksum")
    return header, rows, checkpoints, None


def _record(line: str, number: int, path: Path) -> dict:
    try:
        record = json.loads(line)
    except ValueError:
        if not line.endswith("\n"):
            raise _Truncated(number)
        raise BundleError(f"Line {number} of {path} is not JSON: the bundle is damaged.", hint=_HINT)
    if not isinstance(record, dict):
        raise BundleError(f"Line {number} of {path} is not a record.", hint=_HINT)
    return record


def _typed(fields: tuple, number: int, path: Path) -> tuple:
    """A sequence number first, then text (or nothing): anything else is not what export wrote."""
    if not (type(fields[0]) is int and all(f is None or isinstance(f, str) for f in fields[1:])):
        raise BundleError(f"Line {number} of {path} has fields of the wrong type: the bundle "
                          "was altered or damaged.", hint=_HINT)
    return fields


class _Truncated(BundleError):
    def __init__(self, number: int) -> None:
        super().__init__(f"the bundle stops half-way through its line {number} (an interrupted "
                         "copy?)", hint=_HINT)
