"""Verifying a chain, from a store or a bundle, with no decryption key: every event's hash is
recomputed from what is stored, each must name the one before it, sequence numbers must run
without a gap, and the signed checkpoints must match the events they cover.

The first problem found is reported by event number and kind:

- an event whose stored fields no longer give its hash: edited;
- a missing sequence number: deleted (or, in a bundle, moved);
- an event chained to the event two before it: one was inserted;
- an event whose predecessor's hash is not the one it recorded: the predecessor was edited and
  its hash recomputed;
- a checkpoint whose head no longer matches: the chain was rewritten (hashes and all) since the
  last checkpoint that still matches; an auditor without the private key could not have
  produced the signature;
- a checkpoint beyond the last event, or an expected head (`--expect-head`) that is not in the
  chain: events were cut off the end.

Walking 100,000 events takes about a second (bench/audit_verify.py): one JSON encoding and one
SHA-256 per event, in a loop over rows streamed in batches.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Iterable

from rag.audit.checkpoints import Checkpoint, Verifier
from rag.audit.events import CHAIN_JSON, FORMAT, GENESIS, chain_hash, payload_digest


@dataclass
class Report:
    events: int = 0
    first_seq: int | None = None
    last_seq: int | None = None
    head: str | None = None
    checkpoints: int = 0
    signatures_checked: int = 0
    bad_seq: int | None = None  # the first bad event, when one can be named
    problem: str | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.problem is None

    def to_dict(self) -> dict:
        return {"ok": self.ok, "events": self.events, "first_seq": self.first_seq,
                "last_seq": self.last_seq, "head": self.head, "checkpoints": self.checkpoints,
                "signatures_checked": self.signatures_checked, "bad_event": self.bad_seq,
                "problem": self.problem, "warnings": self.warnings}

    def lines(self) -> list[str]:
        if self.ok:
            span = (f"events {self.first_seq}..{self.last_seq}" if self.events else "no events")
            text = [f"intact: {self.events} events ({span}), head {self.head}",
                    f"checkpoints: {self.checkpoints}, signatures verified: {self.signatures_checked}"]
        else:
            where = f"event {self.bad_seq}: " if self.bad_seq is not None else ""
            text = [f"NOT INTACT: {where}{self.problem}",
                    f"checked {self.events} events before stopping"]
        return text + [f"warning: {w}" for w in self.warnings]


class _Broken(Exception):
    def __init__(self, seq: int | None, problem: str) -> None:
        self.seq, self.problem = seq, problem


def verify_chain(rows: Iterable[tuple], checkpoints: list[Checkpoint],
                 public_key: Verifier | None = None, expect_head: str | None = None,
                 partial: bool = False) -> Report:
    """`rows`: events as tuples of rag.audit.events.COLUMNS, by seq (a sealed payload may be
    None).  `partial`: a bundle may start anywhere (its first link is checked only if a
    checkpoint vouches for it); a store must start at event 1 or at a signed checkpoint."""
    report = Report(checkpoints=len(checkpoints))
    try:
        _check_signatures(checkpoints, public_key, report)
        _walk(rows, {c.seq: c for c in checkpoints}, expect_head, partial, report)
    except _Broken as broken:
        report.bad_seq, report.problem = broken.seq, broken.problem
    return report


def _check_signatures(checkpoints: list[Checkpoint], public_key: Verifier | None,
                      report: Report) -> None:
    if public_key is None:
        if checkpoints:
            report.warnings.append(f"{len(checkpoints)} checkpoint signature(s) not checked: give "
                                   "the public key (--public-key FILE.pub)")
        return
    for c in checkpoints:
        if c.key_fingerprint != public_key.fingerprint:
            raise _Broken(c.seq, f"the checkpoint at this event was signed by key "
                                 f"{c.key_fingerprint}, not by the key given ({public_key.fingerprint})")
        if not public_key.verify(c):
            raise _Broken(c.seq, f"the checkpoint at this event (made {c.at}) has a bad signature: "
                                 "it was forged or altered")
        report.signatures_checked += 1


def _walk(rows: Iterable[tuple], by_seq: dict[int, Checkpoint], expect_head: str | None,
          partial: bool, report: Report) -> None:
    expected = prev = before_prev = None
    confirmed = 0  # the last event a checkpoint confirms
    head_seen = expect_head is None
    # A checkpoint that does not match says only that something up to it changed: the next event
    # may say what (an insertion, an edit of the checkpoint's own event), so it is heard first.
    suspect: _Broken | None = None
    suspect_at = 0  # the unmatched checkpoint's event
    first = last_seq = last_hash = None
    count = 0
    sha256, encode = hashlib.sha256, CHAIN_JSON
    try:
        for row in rows:
            seq, stored_hash = row[0], row[13]
            if expected is None:
                expected, prev = _start(seq, row[12], by_seq, partial, report)
                confirmed = seq - 1 if (seq - 1) in by_seq else 0
                first = seq
            # The fast path, the same checks as _check_event for an intact event: in sequence,
            # chained to the one before, its own hash, and no plain payload to compare.
            intact = (seq == expected and row[12] == prev
                      and (row[11] is not None or row[9] is None)
                      and stored_hash == sha256(encode([FORMAT, *row[:10], row[12]])
                                                .encode("ascii")).hexdigest())
            if not intact:
                try:
                    _check_event(row, expected, prev, before_prev)
                except _Broken as broken:
                    # A problem named at or before the checkpoint is the more precise account.
                    raise broken if suspect is None or broken.seq <= suspect_at else suspect
            if suspect is not None:
                raise suspect
            if seq in by_seq:
                checkpoint = by_seq[seq]
                if checkpoint.head_hash != stored_hash:
                    suspect = _Broken(confirmed + 1, (
                        f"rewritten: the signed checkpoint of {checkpoint.at} at event {seq} no "
                        f"longer matches the chain: events {confirmed + 1} to {seq} were "
                        "rewritten with their hashes recomputed, from this one at the earliest"))
                    suspect_at = seq
                confirmed = seq
            if not head_seen:
                head_seen = stored_hash == expect_head
            before_prev, prev = prev, stored_hash
            count += 1
            expected += 1
            last_seq, last_hash = seq, stored_hash
    finally:  # what was checked, however the walk ended
        if count:
            report.events, report.first_seq, report.last_seq, report.head = (
                count, first, last_seq, last_hash)
    if suspect is not None:
        raise suspect
    _check_end(by_seq, expect_head, head_seen, report)


def _check_event(row: tuple, expected: int, prev: str, before_prev: str | None) -> None:
    (seq, at, actor, role, collection, request_id, action, outcome, details, digest, secret,
     sealed_with, prev_hash, stored_hash) = row
    if seq != expected:
        if seq < expected:
            raise _Broken(seq, f"event {seq} appears again after event {expected - 1}: events "
                               "were reordered or inserted")
        raise _Broken(expected, f"missing: after event {expected - 1} comes event {seq} "
                                "(deleted, or moved)")
    # Over the previous hash the event recorded: an intact event gives its own hash even when
    # its predecessor was changed, which tells the two apart.
    own = chain_hash(seq, at, actor, role, collection, request_id, action, outcome, details,
                     digest, prev_hash)
    if prev_hash != prev and prev_hash == before_prev:
        raise _Broken(seq - 1, f"inserted: event {seq} is chained to event {seq - 2}, so the "
                               f"event now numbered {seq - 1} was not there")
    if own != stored_hash:
        raise _Broken(seq, "edited: its stored fields no longer give its hash")
    if prev_hash != prev:
        raise _Broken(seq - 1, f"edited or replaced: event {seq} recorded the previous hash "
                               f"{prev_hash[:16]}..., but this event's hash is now {prev[:16]}...")
    if sealed_with is None and (secret is not None or digest is not None) and (
            secret is None or digest is None or payload_digest(secret) != digest):
        raise _Broken(seq, "edited: its recorded question or answer no longer matches the "
                           "digest in the chain")


def _start(seq: int, prev_hash: str, by_seq: dict[int, Checkpoint], partial: bool,
           report: Report) -> tuple[int, str]:
    """Where the walk starts: (expected seq, the hash the first event must name)."""
    if seq == 1:
        return 1, GENESIS
    anchor = by_seq.get(seq - 1)
    if anchor is not None and (partial or anchor.kind == "prune"):
        # A store may only start after a prune's checkpoint (its kind is signed: a periodic one
        # does not make a deletion a prune); a bundle after any checkpoint.
        return seq, anchor.head_hash
    if partial:
        report.warnings.append(f"the bundle starts at event {seq}; its link to event {seq - 1} "
                               "is not vouched for by a checkpoint")
        return seq, prev_hash
    raise _Broken(1, f"deleted: the log starts at event {seq}, and no signed prune checkpoint "
                     f"vouches for the removal of events 1 to {seq - 1}")


def _check_end(by_seq: dict[int, Checkpoint], expect_head: str | None, head_seen: bool,
               report: Report) -> None:
    last = report.last_seq or 0
    beyond = [c for c in by_seq.values() if c.seq > last]
    if beyond:
        c = max(beyond, key=lambda c: c.seq)
        raise _Broken(last + 1, f"truncated: the log ends at event {last}, but the checkpoint of "
                                f"{c.at} covers {c.seq} events: events {last + 1} to {c.seq} "
                                "were removed")
    if not head_seen:
        raise _Broken(last + 1, f"truncated or rewritten: the expected head {expect_head} is not "
                                f"in the chain, which ends at event {last} (hash {report.head}); "
                                "events after it were removed, or the chain was rewritten")
    if not by_seq and report.events:
        report.warnings.append("no signed checkpoints: the chain shows edits, but not a "
                               "rewrite of the whole chain (set ARCHIVIST_AUDIT_SIGNING_KEY_FILE)")
