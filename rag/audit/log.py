"""AuditLog: the audit tables (audit_events, audit_checkpoints, audit_meta) in the index folder's
audit.sqlite3, or in PostgreSQL with ARCHIVIST_DB_URL.

Appending is part of the operation it records: callers append before they answer (or, for a
change, before and after making it), and a failed append raises AuditUnavailableError (HTTP 503)
rather than letting the operation go unrecorded.

One append is one transaction: read the head (last sequence number and hash), insert the event
chained to it, write a checkpoint if one is due, commit.  A process killed at any point leaves the
event wholly there or wholly absent, and the chain valid either way.

Appends are serialised, so that there is one chain however many writers there are.  In SQLite the
transaction starts with BEGIN IMMEDIATE, which takes the file's write lock before the head is
read (a CLI command and the server take turns).  In PostgreSQL every replica appends to the same
tables, and the transaction first takes a transaction-scoped advisory lock
(pg_advisory_xact_lock), released by the commit or by the connection dying with its process:
simpler than per-writer chains joined by cross-checkpoints, and held for two short statements
(well under a millisecond on a local network).  A row lock on a head row would turn every append
into an UPDATE of one hot row; SERIALIZABLE isolation would make appends fail and retry.

Durability.  In SQLite the log runs in WAL mode with synchronous=NORMAL: a commit reaches the
operating system, not the disk, so a killed process loses nothing, while a power cut may lose the
events of the last moment (the log stays valid, only shorter).  Flushing every commit
(ARCHIVIST_AUDIT_FSYNC=true) costs 6 ms a question on the README's machine, three times the
budget the whole audit trail has.  In PostgreSQL the server's own settings decide (a commit waits
for its WAL flush by default).
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from pathlib import Path
from typing import Iterator

from rag.audit.checkpoints import CHECKPOINT_COLUMNS, Checkpoint, Signer
from rag.audit.events import (COLUMNS, GENESIS, Actor, Event, canonical_json, chain_hash, epoch,
                              now, payload_digest, secret_aad, secret_payload)
from rag.core import faults
from rag.core.errors import ArchivistError
from rag.core.settings import Settings
from rag.storage.database import Database
from rag.storage.sealing import Keyring, SealingError

_TABLES = """
    CREATE TABLE audit_events (
        seq           {seq} PRIMARY KEY,   -- 1, 2, 3, ...: never reused, pruned or not
        at            TEXT NOT NULL,       -- UTC, 2025-03-01T09:30:00.000000Z
        actor         TEXT NOT NULL,       -- API key id, 'local CLI (user)', or a system part
        role          TEXT NOT NULL,
        collection    TEXT,
        request_id    TEXT,
        action        TEXT NOT NULL,
        outcome       TEXT NOT NULL,
        details       TEXT NOT NULL,       -- public JSON
        secret_digest TEXT,                -- SHA-256 of the secret payload (in the chain)
        secret        TEXT,                -- the payload: JSON, or sealed (base64)
        sealed_with   TEXT,                -- the key id when sealed
        prev_hash     TEXT NOT NULL,
        hash          TEXT NOT NULL
    );
    CREATE INDEX audit_events_by_time ON audit_events (at);
    CREATE TABLE audit_checkpoints (
        seq             {seq} PRIMARY KEY,
        head_hash       TEXT NOT NULL,
        at              TEXT NOT NULL,
        kind            TEXT NOT NULL,
        key_fingerprint TEXT NOT NULL,
        signature       TEXT NOT NULL
    );
    CREATE TABLE audit_meta (name TEXT PRIMARY KEY, value TEXT NOT NULL)
"""
MIGRATIONS = [("001_audit", _TABLES.format(seq="INTEGER"))]
PG_MIGRATIONS = [("001_audit", _TABLES.format(seq="BIGINT"))]

# pg_advisory_xact_lock's two keys: Archivist's class id (as ingest/lock.py's) and the log's.
_LOCK_CLASS = 0x41524348
_APPEND_KEY = 0x61756469  # "audi"
SEALED_WITH = "sealed_with"  # audit_meta: the key id in force, '' for none, or 'rotating:OLD:NEW'


class AuditUnavailableError(ArchivistError):
    """The audit log cannot be written: the operation it would record is refused (HTTP 503)."""


class AuditKeyError(ArchivistError):
    """The key configured is not the one the stored records were sealed with."""


def _failure(exc: Exception) -> AuditUnavailableError:
    text = str(exc).strip() or type(exc).__name__
    full = "full" in text.lower()
    return AuditUnavailableError(
        f"The audit log could not be written ({text}), so the operation was not carried out.",
        hint="Free disk space where the index folder lives (or in the database), then retry; "
             "nothing already recorded was lost." if full else
             "Check that the index folder (or the database) is writable and reachable, then retry.")


class AuditLog:
    def __init__(self, target: Path | str, keyring: Keyring | None = None,
                 signer: Signer | None = None, checkpoint_every: int = 100,
                 checkpoint_interval_s: float = 3600.0, fsync: bool = False) -> None:
        """`target`: the SQLite file or a postgresql:// URL (Settings.audit_db); `keyring` seals
        and opens secret parts; `signer` signs checkpoints (none: none are written); `fsync`:
        flush every commit to disk (see the module doc)."""
        try:
            self._db = Database(target, "audit", MIGRATIONS, PG_MIGRATIONS)
        except Exception as exc:
            if isinstance(exc, ArchivistError):
                raise
            raise _failure(exc) from exc
        self.postgres = self._db.postgres
        self.keyring = keyring or Keyring()
        self.signer = signer
        self.checkpoint_every = checkpoint_every
        self.checkpoint_interval_s = checkpoint_interval_s
        self._last_checkpoint_at: float | None = None  # epoch seconds, read on first append
        self._lock = threading.Lock()
        if not self.postgres:
            self._db.execute("PRAGMA secure_delete=ON")  # pruned rows are overwritten, not left
            self._db.execute(f"PRAGMA synchronous={'FULL' if fsync else 'NORMAL'}")

    @classmethod
    def configured(cls, settings: Settings, keyring: Keyring | None = None) -> AuditLog:
        """The log as the settings describe it (its signing key loaded), sealing with
        `keyring`.  Whether that key is the one in force is rag/audit/upkeep.py's check."""
        cfg = settings.audit
        signer = Signer.from_file(cfg.audit_signing_key_file) if cfg.audit_signing_key_file else None
        return cls(settings.audit_db, keyring, signer, cfg.audit_checkpoint_every,
                   fsync=cfg.audit_fsync)

    def close(self) -> None:
        self._db.close()

    # --- appending ---------------------------------------------------------------------
    def append(self, actor: Actor, action: str, outcome: str = "ok", collection: str | None = None,
               details: dict | None = None, secret: dict | None = None) -> int:
        """Record one event; its sequence number.  AuditUnavailableError if it cannot be."""
        prepared = self._prepare(details, secret)  # sealing is CPU work: outside the lock
        faults.reach("audit_before_append")
        try:
            with self._lock, self._db.transaction():
                seq = self._insert(actor, action, outcome, collection, *prepared)
        except ArchivistError:
            raise
        except Exception as exc:  # the database refused: disk full, read-only, unreachable
            raise _failure(exc) from exc
        faults.reach("audit_after_commit")
        return seq

    def _prepare(self, details: dict | None, secret: dict | None) -> tuple:
        """(details JSON, secret digest, stored payload, sealing key id)."""
        if secret is None:
            return canonical_json(details or {}), None, None, None
        text, digest = secret_payload(secret)
        stored, sealed_with = self.keyring.seal_text(text, secret_aad(digest))
        return canonical_json(details or {}), digest, stored, sealed_with

    def _insert(self, actor: Actor, action: str, outcome: str, collection: str | None,
                details: str, digest: str | None, stored: str | None,
                sealed_with: str | None) -> int:
        """The event chained to the head, and a checkpoint if one is due, inside the caller's
        transaction."""
        if digest is not None:  # an event without a secret part seals nothing: any key will do
            self._check_key()
        seq, prev = self._head()
        seq += 1
        at = now()
        own = chain_hash(seq, at, actor.id, actor.role, collection, actor.request_id, action,
                         outcome, details, digest, prev)
        self._db.execute(f"INSERT INTO audit_events ({', '.join(COLUMNS)}) VALUES "
                         f"({', '.join('?' * len(COLUMNS))})",
                         (seq, at, actor.id, actor.role, collection, actor.request_id, action,
                          outcome, details, digest, stored, sealed_with, prev, own))
        faults.reach("audit_after_insert")
        if self._checkpoint_due(seq):
            self._insert_checkpoint(self.signer.checkpoint(seq, own, at, "periodic"))
        faults.reach("audit_after_checkpoint")
        return seq

    @contextlib.contextmanager
    def operation(self, actor: Actor, action: str, collection: str | None = None,
                  details: dict | None = None) -> Iterator[dict]:
        """For a change: an event before it ("started": if that cannot be written, nothing is
        changed) and one after ("ok", with what the block put in the yielded dict, or "failed"
        with the error).  An interrupted change shows as "started" with no end."""
        details = dict(details or {})
        self.append(actor, action, "started", collection, details)
        result: dict = {}
        try:
            yield result
        except BaseException as exc:
            error = getattr(exc, "message", None) or str(exc) or type(exc).__name__
            with contextlib.suppress(ArchivistError):  # the operation's own error comes first
                self.append(actor, action, "failed", collection, {**details, "error": error[:500]})
            raise
        self.append(actor, action, "ok", collection, {**details, **result})

    def checkpoint(self, kind: str = "manual") -> Checkpoint | None:
        """Sign the head now (None: the log is empty).  Needs a signing key."""
        if self.signer is None:
            raise AuditKeyError("No signing key is configured, so no checkpoint can be signed.",
                                hint="Set ARCHIVIST_AUDIT_SIGNING_KEY_FILE (make one with "
                                     "`archivist audit keygen --signing FILE`).")
        try:
            with self._lock, self._db.transaction():
                seq, head = self._head()
                if seq == 0:
                    return None
                made = self.signer.checkpoint(seq, head, now(), kind)
                self._insert_checkpoint(made)
                return made
        except ArchivistError:
            raise
        except Exception as exc:
            raise _failure(exc) from exc

    def _head(self) -> tuple[int, str]:
        """The last event's (seq, hash), under the append lock; (0, GENESIS) for an empty log."""
        if self.postgres:
            self._db.execute("SELECT pg_advisory_xact_lock(?, ?)", (_LOCK_CLASS, _APPEND_KEY))
        return self._last()

    def _last(self) -> tuple[int, str]:
        row = self._db.execute("SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1").fetchone()
        if row is None:  # everything pruned: the chain goes on from the prune's checkpoint
            row = self._db.execute("SELECT seq, head_hash FROM audit_checkpoints WHERE kind = "
                                   "'prune' ORDER BY seq DESC LIMIT 1").fetchone()
        return (row[0], row[1]) if row else (0, GENESIS)

    def _check_key(self) -> None:
        """Refuse to write with a key other than the one in force: after `audit rotate-key`,
        a replica still running with the old key would otherwise seal with it."""
        row = self._db.execute("SELECT value FROM audit_meta WHERE name = ?", (SEALED_WITH,)).fetchone()
        if row is not None and row[0] != (self.keyring.key_id or ""):
            raise AuditKeyError(
                f"The audit log is sealed with key {row[0] or '(none)'}, this process with "
                f"{self.keyring.key_id or '(none)'}: the key was rotated since it started.",
                hint="Restart it with ARCHIVIST_AUDIT_KEY_FILE set to the new key file.")

    def _checkpoint_due(self, seq: int) -> bool:
        if self.signer is None:
            return False
        if self._last_checkpoint_at is None:
            row = self._db.execute("SELECT at FROM audit_checkpoints ORDER BY seq DESC LIMIT 1").fetchone()
            self._last_checkpoint_at = epoch(row[0]) if row else 0.0
        return seq % self.checkpoint_every == 0 or \
            time.time() - self._last_checkpoint_at >= self.checkpoint_interval_s

    def _insert_checkpoint(self, made: Checkpoint) -> None:
        """A prune's checkpoint replaces another at the same event (only it may anchor a log
        whose first events are gone); any other leaves one already there."""
        conflict = ("DO UPDATE SET head_hash = excluded.head_hash, at = excluded.at, kind = "
                    "excluded.kind, key_fingerprint = excluded.key_fingerprint, signature = "
                    "excluded.signature" if made.kind == "prune" else "DO NOTHING")
        self._db.execute(f"INSERT INTO audit_checkpoints ({', '.join(CHECKPOINT_COLUMNS)}) VALUES "
                         f"(?, ?, ?, ?, ?, ?) ON CONFLICT (seq) {conflict}",
                         (made.seq, made.head_hash, made.at, made.kind, made.key_fingerprint,
                          made.signature))
        self._last_checkpoint_at = time.time()

    # --- reading -----------------------------------------------------------------------
    def head(self) -> tuple[int, str]:
        """The last event's (seq, hash); (0, GENESIS) for a new log."""
        with self._lock:
            return self._last()

    def plain_secrets(self) -> int:
        """Secret parts stored without a key."""
        with self._lock:
            return self._db.execute("SELECT count(*) FROM audit_events WHERE secret IS NOT NULL "
                                    "AND sealed_with IS NULL").fetchone()[0]

    def count(self) -> int:
        with self._lock:
            return self._db.execute("SELECT count(*) FROM audit_events").fetchone()[0]

    def events(self, since: str | None = None, until: str | None = None, actor: str | None = None,
               collection: str | None = None, action: str | None = None,
               outcome: str | None = None, before_seq: int | None = None,
               limit: int | None = None, newest_first: bool = True) -> list[Event]:
        """Events matching every filter given (`since`/`until`: stored-form times, until
        exclusive; `action` 'document.*' matches a prefix), newest first unless asked."""
        where, params = [], []
        for column, op, value in (("at", ">=", since), ("at", "<", until), ("actor", "=", actor),
                                  ("collection", "=", collection), ("outcome", "=", outcome),
                                  ("seq", "<", before_seq)):
            if value is not None:
                where.append(f"{column} {op} ?")
                params.append(value)
        if action:
            if action.endswith("*"):
                where.append("action LIKE ?")
                params.append(action[:-1].replace("%", "").replace("_", "\\_") + "%")
            else:
                where.append("action = ?")
                params.append(action)
        sql = (f"SELECT {', '.join(COLUMNS)} FROM audit_events"
               + (f" WHERE {' AND '.join(where)}" if where else "")
               + f" ORDER BY seq {'DESC' if newest_first else 'ASC'}"
               + (" LIMIT ?" if limit is not None else ""))
        if limit is not None:
            params.append(limit)
        with self._lock:
            rows = self._db.execute(sql, params).fetchall()
        return [Event(*row) for row in rows]

    def rows(self, after_seq: int = 0, through_seq: int | None = None, sealed: bool = False,
             batch: int = 20000) -> Iterator[tuple]:
        """Events as tuples of COLUMNS, by seq, in batches (verification's and export's fast
        path).  Unless `sealed`, a sealed payload is left out (None): the chain never needs it."""
        columns = ", ".join("CASE WHEN sealed_with IS NULL THEN secret END"
                            if c == "secret" and not sealed else c for c in COLUMNS)
        last = through_seq if through_seq is not None else 2**62
        while True:
            with self._lock:
                rows = self._db.execute(f"SELECT {columns} FROM audit_events WHERE seq > ? AND "
                                        "seq <= ? ORDER BY seq LIMIT ?",
                                        (after_seq, last, batch)).fetchall()
            yield from rows
            if len(rows) < batch:
                return
            after_seq = rows[-1][0]

    def first_seq_since(self, since: str) -> int | None:
        with self._lock:
            row = self._db.execute("SELECT min(seq) FROM audit_events WHERE at >= ?", (since,)).fetchone()
        return row[0] if row else None

    def checkpoints(self, from_seq: int = 0) -> list[Checkpoint]:
        with self._lock:
            rows = self._db.execute(f"SELECT {', '.join(CHECKPOINT_COLUMNS)} FROM audit_checkpoints "
                                    "WHERE seq >= ? ORDER BY seq", (from_seq,)).fetchall()
        return [Checkpoint(*row) for row in rows]

    def open_secret(self, event: Event) -> dict | None:
        """The event's secret part, opened with the keyring (SealingError without the key)."""
        if event.secret_digest is None:
            return None
        text = self.keyring.open_text(event.secret, event.sealed_with, secret_aad(event.secret_digest))
        if payload_digest(text) != event.secret_digest:
            raise SealingError(f"Event {event.seq}'s secret part does not match its digest.",
                               hint="Run `archivist audit verify --decrypt` to list every such event.")
        return json.loads(text)["data"]

    # --- the key in force ----------------------------------------------------------------
    def meta(self, name: str) -> str | None:
        with self._lock:
            row = self._db.execute("SELECT value FROM audit_meta WHERE name = ?", (name,)).fetchone()
        return row[0] if row else None

    def set_meta(self, name: str, value: str) -> None:
        with self._lock:
            self._db.execute("INSERT INTO audit_meta (name, value) VALUES (?, ?) "
                             "ON CONFLICT (name) DO UPDATE SET value = excluded.value", (name, value))

    @property
    def db(self) -> Database:
        """For upkeep (rag/audit/upkeep.py): prune and rotation write under `locked()`."""
        return self._db

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """A transaction holding the append lock: no event is appended meanwhile.  Upkeep
        (rag/audit/upkeep.py) changes the tables in it, and records itself with append_locked."""
        try:
            with self._lock, self._db.transaction():
                if self.postgres:
                    self._db.execute("SELECT pg_advisory_xact_lock(?, ?)", (_LOCK_CLASS, _APPEND_KEY))
                yield
        except ArchivistError:
            raise
        except Exception as exc:
            raise _failure(exc) from exc

    def append_locked(self, actor: Actor, action: str, outcome: str = "ok",
                      collection: str | None = None, details: dict | None = None) -> int:
        """append(), inside locked(): the event commits (or not) with the upkeep it records."""
        return self._insert(actor, action, outcome, collection, *self._prepare(details, None))

    def insert_checkpoint(self, made: Checkpoint) -> None:
        """Inside locked()."""
        self._insert_checkpoint(made)

    def compact(self) -> None:
        """Rewrite the SQLite file so that removed or re-sealed content leaves no trace in free
        pages or the write-ahead log (PostgreSQL: nothing to do here)."""
        if not self.postgres:
            with self._lock:
                self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                self._db.execute("VACUUM")
                self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
