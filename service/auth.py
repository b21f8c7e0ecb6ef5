"""API keys with roles, stored hashed, and the sessions the portal logs in with.

Roles: `reader` (search, ask, chat, read documents), `editor` (also upload, delete and re-index
documents), `admin` (also keys and collections, every collection).  A reader or editor key is
granted a list of collections, or all of them.  With no key at all the server is a personal
tool: it binds to loopback only and every request acts as a local admin.

Keys are random 256-bit secrets, so a plain SHA-256 is a sound way to store them (no password
stretching needed); only the key's public id prefix is ever shown again.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from rag.core.errors import ArchivistError
from rag.storage.database import Database

ROLES = ("reader", "editor", "admin")
ACTIONS = {"read": 0, "write": 1, "admin": 2}  # the least role index allowed to do each
SESSION_TTL_S = 12 * 3600

MIGRATIONS = [
    ("001_keys", """
        CREATE TABLE keys (id TEXT PRIMARY KEY, hash TEXT UNIQUE NOT NULL, role TEXT NOT NULL,
                           collections TEXT NOT NULL, note TEXT, created_at REAL NOT NULL,
                           revoked_at REAL);
        CREATE TABLE sessions (hash TEXT PRIMARY KEY, key_id TEXT NOT NULL REFERENCES keys (id),
                               expires_at REAL NOT NULL)"""),
]
# The same in PostgreSQL (DOUBLE PRECISION: its REAL is 4 bytes, too coarse for timestamps).
PG_MIGRATIONS = [
    ("001_keys", """
        CREATE TABLE keys (id TEXT PRIMARY KEY, hash TEXT UNIQUE NOT NULL, role TEXT NOT NULL,
                           collections TEXT NOT NULL, note TEXT,
                           created_at DOUBLE PRECISION NOT NULL, revoked_at DOUBLE PRECISION);
        CREATE TABLE sessions (hash TEXT PRIMARY KEY, key_id TEXT NOT NULL REFERENCES keys (id),
                               expires_at DOUBLE PRECISION NOT NULL)"""),
]


class AuthError(ArchivistError):
    """No or an unknown key (401), or a key without the right (403): see `status`.  `principal`:
    the caller, when known (a 403), for the audit log."""

    def __init__(self, message: str, hint: str | None = None, status: int = 401,
                 principal: Principal | None = None) -> None:
        super().__init__(message, hint)
        self.status = status
        self.principal = principal


@dataclass(frozen=True)
class Principal:
    key_id: str
    role: str
    collections: tuple[str, ...]  # ("*",) for all

    def can(self, action: str, collection: str | None = None) -> bool:
        if ROLES.index(self.role) < ACTIONS[action]:
            return False
        return collection is None or "*" in self.collections or collection in self.collections

    def check(self, action: str, collection: str | None = None) -> None:
        if not self.can(action, collection):
            where = f" on collection {collection!r}" if collection else ""
            raise AuthError(f"Key {self.key_id} ({self.role}) may not {action}{where}.", status=403,
                            hint="Ask an admin for a key with that role and collection "
                                 "(`archivist keys create --role ... --collection ...`).",
                            principal=self)


LOCAL_ADMIN = Principal("local", "admin", ("*",))


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def key_id_of(secret: str) -> str | None:
    """The public id inside a key (`ak_<id>_<secret part>`), whether or not the key is valid:
    what the audit log names for a key that failed to authenticate.  None if it has no id."""
    parts = secret.split("_")
    if len(parts) >= 3 and parts[0] == "ak" and len(parts[1]) == 8 and all(
            c in "0123456789abcdef" for c in parts[1]):
        return parts[1]
    return None


class KeyStore:
    def __init__(self, target: Path | str) -> None:
        """`target`: the SQLite file, or a postgresql:// URL (Settings.keys_db)."""
        self._db = Database(target, "keys", MIGRATIONS, PG_MIGRATIONS)
        self._lock = threading.Lock()
        self.closed = False

    def close(self) -> None:
        self._db.close()
        self.closed = True

    def any_keys(self) -> bool:
        """Whether keys are in force.  Revoked keys count: revoking the last key must lock the
        server, not open it to everyone."""
        with self._lock:
            return self._db.execute("SELECT 1 FROM keys LIMIT 1").fetchone() is not None

    def create(self, role: str, collections: list[str] | None = None, note: str | None = None) -> str:
        """A new key (shown once: only its hash is kept)."""
        if role not in ROLES:
            raise ArchivistError(f"Unknown role {role!r}.", hint=f"Use one of: {', '.join(ROLES)}.")
        key_id = secrets.token_hex(4)
        secret = f"ak_{key_id}_{secrets.token_urlsafe(32)}"
        scope = ["*"] if role == "admin" or not collections else sorted(set(collections))
        with self._lock:
            self._db.execute("INSERT INTO keys VALUES (?, ?, ?, ?, ?, ?, NULL)",
                             (key_id, _hash(secret), role, json.dumps(scope), note, time.time()))
        return secret

    def list(self) -> list[dict]:
        with self._lock:
            rows = self._db.execute("SELECT id, role, collections, note, created_at, revoked_at "
                                    "FROM keys ORDER BY created_at").fetchall()
        return [{"id": r[0], "role": r[1], "collections": json.loads(r[2]), "note": r[3],
                 "created_at": r[4], "revoked": r[5] is not None} for r in rows]

    def revoke(self, key_id: str) -> bool:
        with self._lock, self._db.transaction():
            changed = self._db.execute("UPDATE keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
                                       (time.time(), key_id)).rowcount
            self._db.execute("DELETE FROM sessions WHERE key_id = ?", (key_id,))
        return bool(changed)

    def verify(self, secret: str) -> Principal | None:
        with self._lock:
            row = self._db.execute("SELECT id, role, collections FROM keys WHERE hash = ? AND "
                                   "revoked_at IS NULL", (_hash(secret),)).fetchone()
        return Principal(row[0], row[1], tuple(json.loads(row[2]))) if row else None

    def require(self, secret: str) -> Principal:
        """verify(), failing with a 401 for an unknown or revoked key."""
        principal = self.verify(secret)
        if principal is None:
            raise AuthError("The API key is not valid, or it was revoked.",
                            hint="Check the key, or ask an admin for a new one.")
        return principal

    def start_session(self, principal: Principal) -> str:
        token = secrets.token_urlsafe(32)
        with self._lock:
            self._db.execute("DELETE FROM sessions WHERE expires_at < ?", (time.time(),))
            self._db.execute("INSERT INTO sessions VALUES (?, ?, ?)",
                             (_hash(token), principal.key_id, time.time() + SESSION_TTL_S))
        return token

    def session(self, token: str) -> Principal | None:
        with self._lock:
            row = self._db.execute(
                "SELECT k.id, k.role, k.collections FROM sessions s JOIN keys k ON k.id = s.key_id "
                "WHERE s.hash = ? AND s.expires_at > ? AND k.revoked_at IS NULL",
                (_hash(token), time.time())).fetchone()
        return Principal(row[0], row[1], tuple(json.loads(row[2]))) if row else None

    def end_session(self, token: str) -> None:
        with self._lock:
            self._db.execute("DELETE FROM sessions WHERE hash = ?", (_hash(token),))
