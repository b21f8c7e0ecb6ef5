"""Answers, conversations and the response cache, in one SQLite file next to the index (or in
PostgreSQL with ARCHIVIST_DB_URL, shared by every host of a deployment).

Each record belongs to the collection it was made in; readers of one collection never see
another's (the callers check: they know who may read what).

Every answer is recorded with what produced it (question, the query actually searched, passages
with chunk ids and content hashes, model file and sha256, embedding model, index version,
sampling parameters, timings), so it can be audited, returned by id and replayed.  A repeated
question with the same index version, model and parameters is answered from its record.

With a key (ARCHIVIST_AUDIT_KEY_FILE, rag/storage/sealing.py) the question, the query and the
answer (its text, quotes, passages) are sealed, and the cache key is an HMAC under that key
rather than a plain hash, which anyone could recompute for a guessed question.  The provenance
(chunk ids, content hashes, models, index version) stays readable: it holds no question text.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
import uuid
from pathlib import Path

from rag.core.shapes import Answer
from rag.storage.database import Database
from rag.storage.sealing import Keyring

MIGRATIONS: list[tuple[str, str]] = [
    ("001_answers_conversations", """
        CREATE TABLE answers (
            id          TEXT PRIMARY KEY,
            created_at  REAL NOT NULL,
            question    TEXT NOT NULL,
            query       TEXT NOT NULL,
            cache_key   TEXT,
            answer      TEXT NOT NULL,      -- the Answer JSON as returned
            provenance  TEXT NOT NULL       -- models, index version, parameters, timings
        );
        CREATE INDEX answers_by_cache_key ON answers (cache_key);
        CREATE TABLE conversations (id TEXT PRIMARY KEY, created_at REAL NOT NULL);
        CREATE TABLE turns (
            conversation_id TEXT NOT NULL REFERENCES conversations (id),
            position        INTEGER NOT NULL,
            answer_id       TEXT NOT NULL REFERENCES answers (id),
            PRIMARY KEY (conversation_id, position)
        );
    """),
    # Records belong to a collection: a key sees only its collections' answers and conversations.
    # Older answers name theirs in the provenance; a conversation takes its first answer's.
    ("002_collections", """
        ALTER TABLE answers ADD COLUMN collection TEXT NOT NULL DEFAULT 'default';
        UPDATE answers SET collection = coalesce(json_extract(provenance, '$.collection'), 'default');
        ALTER TABLE conversations ADD COLUMN collection TEXT NOT NULL DEFAULT 'default';
        UPDATE conversations SET collection = coalesce(
            (SELECT a.collection FROM turns t JOIN answers a ON a.id = t.answer_id
             WHERE t.conversation_id = conversations.id ORDER BY t.position LIMIT 1), 'default');
        CREATE INDEX answers_by_collection ON answers (collection, created_at);
    """),
    # The key that sealed the row's question, query and answer; NULL: stored plain.
    ("003_sealed_with", "ALTER TABLE answers ADD COLUMN sealed_with TEXT"),
]

# The same schema in PostgreSQL, which starts at the latest SQLite version (no old files to
# carry over).  DOUBLE PRECISION: PostgreSQL's REAL is 4 bytes, too coarse for timestamps.
PG_MIGRATIONS: list[tuple[str, str]] = [
    ("001_answers_conversations", """
        CREATE TABLE answers (
            id          TEXT PRIMARY KEY,
            created_at  DOUBLE PRECISION NOT NULL,
            question    TEXT NOT NULL,
            query       TEXT NOT NULL,
            cache_key   TEXT,
            answer      TEXT NOT NULL,
            provenance  TEXT NOT NULL,
            collection  TEXT NOT NULL DEFAULT 'default'
        );
        CREATE INDEX answers_by_cache_key ON answers (cache_key);
        CREATE INDEX answers_by_collection ON answers (collection, created_at);
        CREATE TABLE conversations (id TEXT PRIMARY KEY, created_at DOUBLE PRECISION NOT NULL,
                                    collection TEXT NOT NULL DEFAULT 'default');
        CREATE TABLE turns (
            conversation_id TEXT NOT NULL REFERENCES conversations (id),
            position        INTEGER NOT NULL,
            answer_id       TEXT NOT NULL REFERENCES answers (id),
            PRIMARY KEY (conversation_id, position)
        );
    """),
    ("002_sealed_with", "ALTER TABLE answers ADD COLUMN sealed_with TEXT"),
]

SEALED_COLUMNS = ("question", "query", "answer")


def _aad(answer_id: str, column: str) -> bytes:
    return f"answers/{answer_id}/{column}".encode()


def cache_key(question: str, provenance: dict, model_key: str) -> str:
    """Same question (up to case and spacing), index version, models and parameters."""
    normal = " ".join(question.lower().split())
    return hashlib.sha256(json.dumps([normal, provenance, model_key], sort_keys=True).encode()).hexdigest()


class Records:
    def __init__(self, target: Path | str, keyring: Keyring | None = None) -> None:
        """`target`: the SQLite file, or a postgresql:// URL (Settings.records_db); `keyring`:
        the key sealing new rows and opening sealed ones (None: plain)."""
        self._db = Database(target, "records", MIGRATIONS, PG_MIGRATIONS)
        self._lock = threading.Lock()
        self.keyring = keyring or Keyring()

    def close(self) -> None:
        self._db.close()

    def cache_key(self, question: str, provenance: dict, model_key: str) -> str:
        """cache_key(), as an HMAC under the sealing key when there is one."""
        plain = cache_key(question, provenance, model_key)
        sealer = self.keyring.current
        return sealer.mac(plain.encode()) if sealer else plain

    def _open(self, answer_id: str, column: str, value: str, sealed_with: str | None) -> str:
        return self.keyring.open_text(value, sealed_with, _aad(answer_id, column))

    # --- answers -----------------------------------------------------------------------
    def save_answer(self, collection: str, question: str, query: str, answer: Answer,
                    provenance: dict, cache_key: str | None) -> str:
        answer_id = uuid.uuid4().hex
        texts = {"question": question, "query": query,
                 "answer": answer.model_dump_json(exclude={"answer_id", "cached"})}
        sealed_with = self.keyring.key_id
        sealed = {column: self.keyring.seal_text(text, _aad(answer_id, column))[0]
                  for column, text in texts.items()}
        with self._lock:
            self._db.execute(
                "INSERT INTO answers (id, created_at, question, query, cache_key, answer, provenance, "
                "collection, sealed_with) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (answer_id, time.time(), sealed["question"], sealed["query"], cache_key,
                 sealed["answer"], json.dumps(provenance, ensure_ascii=False), collection,
                 sealed_with))
        return answer_id

    def get_answer(self, answer_id: str) -> dict | None:
        """The record, whichever collection it belongs to (its `collection` says which: callers
        check the reader may see it)."""
        with self._lock:
            row = self._db.execute(
                "SELECT id, created_at, question, query, answer, provenance, collection, sealed_with "
                "FROM answers WHERE id = ?", (answer_id,)).fetchone()
        if row is None:
            return None
        question, query, answer = (self._open(row[0], column, value, row[7])
                                   for column, value in zip(SEALED_COLUMNS, row[2:5]))
        return {"id": row[0], "created_at": row[1], "question": question, "query": query,
                "answer": json.loads(answer), "provenance": json.loads(row[5]),
                "collection": row[6]}

    def cached(self, cache_key: str) -> tuple[str, Answer] | None:
        with self._lock:
            row = self._db.execute(
                "SELECT id, answer, sealed_with FROM answers WHERE cache_key = ? "
                "ORDER BY created_at DESC LIMIT 1", (cache_key,)).fetchone()
        if row is None:
            return None
        return row[0], Answer.model_validate_json(self._open(row[0], "answer", row[1], row[2]))

    # --- conversations -----------------------------------------------------------------
    @staticmethod
    def new_conversation_id() -> str:
        return uuid.uuid4().hex

    def conversation_collection(self, conversation_id: str) -> str | None:
        """The collection the conversation belongs to; None if there is no such conversation."""
        with self._lock:
            row = self._db.execute("SELECT collection FROM conversations WHERE id = ?",
                                   (conversation_id,)).fetchone()
        return row[0] if row else None

    def add_turn(self, collection: str, conversation_id: str, answer_id: str) -> None:
        """Append an answer to the conversation, which starts with its first turn."""
        with self._lock, self._db.transaction():
            self._db.execute("INSERT INTO conversations (id, created_at, collection) "
                             "VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
                             (conversation_id, time.time(), collection))
            if self._db.postgres:
                # Another host may be adding a turn too: take turns on the conversation's row
                # (SQLite's BEGIN IMMEDIATE already locks the whole file).
                self._db.execute("SELECT 1 FROM conversations WHERE id = ? FOR UPDATE",
                                 (conversation_id,))
            position = self._db.execute(
                "SELECT coalesce(max(position), 0) + 1 FROM turns WHERE conversation_id = ?",
                (conversation_id,)).fetchone()[0]
            self._db.execute("INSERT INTO turns VALUES (?, ?, ?)", (conversation_id, position, answer_id))

    def turns(self, conversation_id: str) -> list[dict]:
        """The conversation's exchanges, oldest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT a.id, a.created_at, a.question, a.query, a.answer, a.sealed_with FROM turns t "
                "JOIN answers a ON a.id = t.answer_id WHERE t.conversation_id = ? ORDER BY t.position",
                (conversation_id,)).fetchall()
        turns = []
        for r in rows:
            question, query, answer = (self._open(r[0], column, value, r[5])
                                       for column, value in zip(SEALED_COLUMNS, r[2:5]))
            turns.append({"answer_id": r[0], "created_at": r[1], "question": question,
                          "query": query, "answer": json.loads(answer)})
        return turns

    def prune(self, before: float) -> dict:
        """Remove the answers made before `before` (epoch seconds), their conversation turns and
        the conversations left without any: the audit log's retention (`archivist audit prune`)
        applies to the questions and answers kept here too.  A conversation that went on after
        `before` keeps its later turns.  Returns the counts removed."""
        with self._lock, self._db.transaction():
            turns = self._db.execute(
                "DELETE FROM turns WHERE answer_id IN "
                "(SELECT id FROM answers WHERE created_at < ?)", (before,)).rowcount
            answers = self._db.execute("DELETE FROM answers WHERE created_at < ?",
                                       (before,)).rowcount
            conversations = self._db.execute(
                "DELETE FROM conversations WHERE NOT EXISTS "
                "(SELECT 1 FROM turns WHERE turns.conversation_id = conversations.id)").rowcount
        return {"answers": answers, "turns": turns, "conversations": conversations}

    # --- sealing -----------------------------------------------------------------------
    def plain_rows(self) -> int:
        """Answers stored without a key."""
        with self._lock:
            return self._db.execute("SELECT count(*) FROM answers WHERE sealed_with IS NULL").fetchone()[0]

    def reseal(self, keyring: Keyring, batch: int = 500) -> int:
        """Seal every answer with `keyring`'s current key, opening each with the key that sealed
        it (`keyring` holds the old ones too); returns the rows rewritten.  Cache keys are
        cleared: they are MACs under the old key (or plain hashes), so those answers are no
        longer served from the cache.  Re-running after an interruption finishes the job."""
        target = keyring.key_id
        done = 0
        while True:
            with self._lock:
                rows = self._db.execute(
                    "SELECT id, question, query, answer, sealed_with FROM answers WHERE "
                    "sealed_with IS NULL OR sealed_with <> ? LIMIT ?", (target, batch)).fetchall()
                if not rows:
                    return done
                with self._db.transaction():
                    for row in rows:
                        values = [keyring.seal_text(keyring.open_text(value, row[4], _aad(row[0], c)),
                                                    _aad(row[0], c))[0]
                                  for c, value in zip(SEALED_COLUMNS, row[1:4])]
                        self._db.execute("UPDATE answers SET question = ?, query = ?, answer = ?, "
                                         "sealed_with = ?, cache_key = NULL WHERE id = ?",
                                         (*values, target, row[0]))
            done += len(rows)
