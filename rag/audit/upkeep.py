"""Looking after the audit log and the records it shares a key with: which key is in force,
rotating it, and pruning old events.

The key in force.  audit_meta's `sealed_with` names the key every sealed row uses ('' for none).
A process whose key differs refuses to start (a server started without the key would otherwise
write plain rows beside sealed ones), except for the one safe change: a key configured where
nothing secret has been written yet.

Rotation (`archivist audit rotate-key NEW`) marks the log 'rotating:OLD:NEW' (appends stop:
every writer checks the mark), re-seals each audit payload and each answer record with the new
key, clears the cache keys (MACs under the old key), then marks NEW in force.  Only ciphertexts
change, and the chain hashes the payloads' digests, never their ciphertexts: every hash, every
checkpoint and every head an auditor wrote down stay valid.  Interrupted, it is run again and
finishes (rows name the key that sealed them; both keys are at hand).

Pruning (`archivist audit prune --before DATE`) signs a checkpoint of kind "prune" at the last
event removed, removes the events up to it and records the prune as an event chained to that
checkpoint, in one transaction: verification then starts from the signed checkpoint.  Only a
prune's checkpoint may start a log (the kind is signed), so deleting the oldest events up to an
ordinary checkpoint is still caught.
"""

from __future__ import annotations

from typing import Callable

from rag.audit.events import Actor, epoch, now, secret_aad
from rag.audit.log import SEALED_WITH, AuditKeyError, AuditLog
from rag.core.errors import ArchivistError
from rag.storage.answer_records import Records
from rag.storage.sealing import Keyring, Sealer

_SET_KEY = "Set ARCHIVIST_AUDIT_KEY_FILE to the key file with id {id}."


def require_key_in_force(log: AuditLog, plain_records: Callable[[], int]) -> None:
    """Refuse (AuditKeyError) to work with a key other than the one the stores are sealed with;
    the first time, record the key in force.  `plain_records`: how many answer records are
    stored plain (asked only when a key is newly configured)."""
    marker, want = log.meta(SEALED_WITH), log.keyring.key_id or ""
    if marker == want:
        return
    if marker is not None and marker.startswith("rotating:"):
        _, old, new = marker.split(":")
        raise AuditKeyError(f"A rotation from key {old or '(none)'} to key {new} was interrupted.",
                            hint=f"Run `archivist audit rotate-key NEW_KEY_FILE` again (NEW_KEY_FILE "
                                 f"holding key {new}) with ARCHIVIST_AUDIT_KEY_FILE as it was.")
    if not marker and want:  # a new log, or nothing sealed so far: sealing may start now
        plain = log.plain_secrets() + plain_records()
        if plain:
            raise AuditKeyError(
                f"{plain} questions and answers are stored in plain text, and a key is now "
                "configured: sealing only the new ones would leave the old ones readable.",
                hint="Seal them first: run `archivist audit rotate-key KEY_FILE` without "
                     "ARCHIVIST_AUDIT_KEY_FILE, then set it to KEY_FILE.")
        log.set_meta(SEALED_WITH, want)
        return
    if marker is None:  # a new log, no key: plain
        log.set_meta(SEALED_WITH, want)
        return
    if not want:
        raise AuditKeyError(
            f"The audit log and answer records are sealed with key {marker}, and no key is "
            "configured: refusing to write plain records beside sealed ones.",
            hint=_SET_KEY.format(id=marker))
    raise AuditKeyError(f"The audit log and answer records are sealed with key {marker}; the "
                        f"configured key file holds key {want}.",
                        hint=_SET_KEY.format(id=marker) + " To change keys, use `archivist audit "
                        "rotate-key NEW_KEY_FILE`.")


def rotate_key(log: AuditLog, records: Records, new: Sealer, actor: Actor) -> dict:
    """Re-seal everything with `new` (see the module doc); the counts re-sealed."""
    old = log.keyring
    marker = log.meta(SEALED_WITH) or ""
    if marker.startswith("rotating:"):
        _, was, to = marker.split(":")
        if to != new.key_id:
            raise AuditKeyError(f"An interrupted rotation to key {to} must be finished first.",
                                hint=f"Run rotate-key again with the key file holding key {to}.")
    elif marker != (old.key_id or ""):
        raise AuditKeyError(f"The stores are sealed with key {marker or '(none)'}, not with the "
                            f"configured key {old.key_id or '(none)'}.",
                            hint=_SET_KEY.format(id=marker or "(none): unset it"))
    else:
        was = old.key_id or ""
    keyring = Keyring(new, older=tuple(s for s in (old.current,) if s))
    log.set_meta(SEALED_WITH, f"rotating:{was}:{new.key_id}")
    events = _reseal_events(log, keyring)
    answers = records.reseal(keyring)
    log.keyring = records.keyring = Keyring(new)
    with log.locked():
        log.db.execute("UPDATE audit_meta SET value = ? WHERE name = ?", (new.key_id, SEALED_WITH))
        log.append_locked(actor, "audit.rotate-key", details={
            "from_key": was or None, "to_key": new.key_id, "events_resealed": events,
            "answers_resealed": answers})
    log.compact()  # old ciphertexts out of free pages and the write-ahead log
    return {"from_key": was or None, "to_key": new.key_id, "events": events, "answers": answers}


def _reseal_events(log: AuditLog, keyring: Keyring, batch: int = 1000) -> int:
    done = 0
    while True:
        with log.locked():
            rows = log.db.execute(
                "SELECT seq, secret, sealed_with, secret_digest FROM audit_events WHERE secret IS "
                "NOT NULL AND (sealed_with IS NULL OR sealed_with <> ?) ORDER BY seq LIMIT ?",
                (keyring.key_id, batch)).fetchall()
            for seq, stored, sealed_with, digest in rows:
                aad = secret_aad(digest)
                value, key_id = keyring.seal_text(keyring.open_text(stored, sealed_with, aad), aad)
                log.db.execute("UPDATE audit_events SET secret = ?, sealed_with = ? WHERE seq = ?",
                               (value, key_id, seq))
        done += len(rows)
        if len(rows) < batch:
            return done


def prune(log: AuditLog, before: str, actor: Actor, records: Records | None = None) -> dict:
    """Remove the events before `before` (stored-form time), leaving a signed checkpoint, and
    with `records` the answers and conversation turns made before it (what the events of a
    question point to: a retention limit that left them would keep the questions)."""
    if log.signer is None:
        raise AuditKeyError("Pruning needs a signing key: without a signed checkpoint nobody "
                            "could tell a prune from a deletion.",
                            hint="Set ARCHIVIST_AUDIT_SIGNING_KEY_FILE (`archivist audit keygen "
                                 "--signing FILE` makes one).")
    with log.locked():
        last = log.db.execute("SELECT max(seq) FROM audit_events WHERE at < ?",
                              (before,)).fetchone()[0]
        if not last:
            raise ArchivistError(f"No event is older than {before}.",
                                 hint="Nothing to prune; `archivist audit list` shows the oldest.")
        head = log.db.execute("SELECT hash FROM audit_events WHERE seq = ?", (last,)).fetchone()
        removed = log.db.execute("SELECT count(*) FROM audit_events WHERE seq <= ?",
                                 (last,)).fetchone()[0]
        anchor = log.signer.checkpoint(last, head[0], now(), "prune")
        log.insert_checkpoint(anchor)
        log.db.execute("DELETE FROM audit_events WHERE seq <= ?", (last,))
        records_removed = records.prune(epoch(before)) if records is not None else None
        seq = log.append_locked(actor, "audit.prune", details={
            "before": before, "removed_through": last, "removed": removed,
            "anchor_hash": head[0], "records_removed": records_removed})
    log.compact()
    return {"removed": removed, "removed_through": last, "anchor_hash": head[0], "event": seq,
            "records_removed": records_removed}
