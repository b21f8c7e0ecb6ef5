"""Answers, conversations and the response cache, in one SQLite file next to the index (or in
PostgreSQL with ARCHIVIST_DB_URL, shared by every host of a deployment).

Each record belongs to the collection it was made in; readers of one collection never see
another's (the callers check: they know who may read what).

Every answer is recorded with what produced it (question, the query actually searched, passages
with chunk ids and content hashes, model file and sha256, embedding model, index version,
sampling parameters, timings), so it can be audited, returned by id and replayed.  A repeated
question with the same index version, model and parameters is answered from its record.
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
]


def cache_key(question: str, provenance: dict, model_key: str) -> str:
    """Same question (up to case and spacing), index version, models and parameters."""
    normal = " ".join(question.lower().split())
    return hashlib.sha256(json.dumps([normal, provenance, model_key], sort_keys=True).encode()).hexdigest()


class Records:
    def __init__(self, target: Path | str) -> None:
        """`target`: the SQLite file, or a postgresql:// URL (Settings.records_db)."""
        self._db = Database(target, "records", MIGRATIONS, PG_MIGRATIONS)
        self._lock = threading.Lock()

    def close(self) -> None:
        self._db.close()

    # --- answers -----------------------------------------------------------------------
    def save_answer(self, collection: str, question: str, query: str, answer: Answer,
                    provenance: dict, cache_key: str | None) -> str:
        answer_id = uuid.uuid4().hex
        with self._lock:
            self._db.execute(
                "INSERT INTO answers (id, created_at, question, query, cache_key, answer, provenance, "
                "collection) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (answer_id, time.time(), question, query, cache_key,
                 answer.model_dump_json(exclude={"answer_id", "cached"}),
                 json.dumps(provenance, ensure_ascii=False), collection))
        return answer_id

    def get_answer(self, answer_id: str) -> dict | None:
        """The record, whichever collection it belongs to (its `collection` says which: callers
        check the reader may see it)."""
        with self._lock:
            row = self._db.execute(
                "SELECT id, created_at, question, query, answer, provenance, collection FROM answers "
                "WHERE id = ?", (answer_id,)).fetchone()
        if row is None:
            return None
        return {"id": row[0], "created_at": row[1], "question": row[2], "query": row[3],
                "answer": json.loads(row[4]), "provenance": json.loads(row[5]),
                "collection": row[6]}

    def cached(self, cache_key: str) -> tuple[str, Answer] | None:
        with self._lock:
            row = self._db.execute(
                "SELECT id, answer FROM answers WHERE cache_key = ? ORDER BY created_at DESC LIMIT 1",
                (cache_key,)).fetchone()
        return (row[0], Answer.model_validate_json(row[1])) if row else None

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
                "SELECT a.id, a.created_at, a.question, a.query, a.answer FROM turns t "
                "JOIN answers a ON a.id = t.answer_id WHERE t.conversation_id = ? ORDER BY t.position",
                (conversation_id,)).fetchall()
        return [{"answer_id": r[0], "created_at": r[1], "question": r[2], "query": r[3],
                 "answer": json.loads(r[4])} for r in rows]
