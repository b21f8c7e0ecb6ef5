"""An audit event: who (the Actor), when, on which collection, in which request, did what
(action) with what outcome; public details; and a secret part (question, answer, passage text,
conversation turns) that is sealed when a key is configured.

The chain.  Each event's hash is SHA-256 over its stored fields and the previous event's hash:

    sha256( JSON [1, seq, at, actor, role, collection, request_id, action, outcome, details,
                  secret_digest, prev_hash] )

written as Python's `json.dumps(fields, separators=(",", ":"))` does (ASCII, no spaces; absent
values are null), so an auditor can recompute it with any JSON library.  The secret part enters
the chain as `secret_digest`, the SHA-256 of its plain payload, which begins with 16 random bytes
(a salt): so the digest cannot be confirmed by hashing a guessed question, the chain can be
checked without the key, and rotating the key (which re-encrypts the payload, never changes it)
leaves every hash as it was.  The ciphertext itself is authenticated by AES-GCM, with the digest
as associated data: it only opens as the payload the chain vouches for.
"""

from __future__ import annotations

import functools
import getpass
import hashlib
import json
import os
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone

from rag.core.errors import BadRequestError

FORMAT = 1
GENESIS = "0" * 64  # the "previous hash" of the first event

# The stored columns, in the order rows are read.
COLUMNS = ("seq", "at", "actor", "role", "collection", "request_id", "action", "outcome",
           "details", "secret_digest", "secret", "sealed_with", "prev_hash", "hash")


@functools.lru_cache(maxsize=1)
def _process_request_id() -> str:
    """One id for everything a CLI command does (an HTTP request has the middleware's)."""
    return f"cli-{uuid.uuid4().hex[:12]}"


@dataclass(frozen=True)
class Actor:
    """Who acts: an API key (its id and role), the local CLI (with the OS user), or the server
    itself ("system": start-up, the folder watcher)."""

    id: str
    role: str
    request_id: str | None = None

    @classmethod
    def key(cls, key_id: str, role: str, request_id: str | None) -> Actor:
        return cls(key_id, role, request_id)

    @classmethod
    def local_cli(cls) -> Actor:
        try:
            user = getpass.getuser()
        except (KeyError, OSError):  # no name for this uid (containers)
            user = f"uid {os.getuid()}"
        return cls(f"local CLI ({user})", "local", _process_request_id())

    @classmethod
    def system(cls, name: str, request_id: str | None = None) -> Actor:
        return cls(name, "system", request_id)


@dataclass(frozen=True)
class Event:
    """An event as stored."""

    seq: int
    at: str
    actor: str
    role: str
    collection: str | None
    request_id: str | None
    action: str
    outcome: str
    details: str  # canonical JSON
    secret_digest: str | None
    secret: str | None  # the payload's JSON, or its ciphertext (base64) when sealed_with is set
    sealed_with: str | None
    prev_hash: str
    hash: str

    def public(self) -> dict:
        """The event as readers see it, the secret part left out."""
        return {"seq": self.seq, "at": self.at, "actor": self.actor, "role": self.role,
                "collection": self.collection, "request_id": self.request_id,
                "action": self.action, "outcome": self.outcome,
                "details": json.loads(self.details), "sealed": self.sealed_with is not None,
                "hash": self.hash, "prev_hash": self.prev_hash}


def now() -> str:
    """UTC, to the microsecond, in one fixed form, so that text order is time order."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def epoch(at: str) -> float:
    """A stored-form time (now()'s) as epoch seconds."""
    return datetime.strptime(at, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc).timestamp()


def parse_time(text: str) -> str:
    """'2025-03-01', '2025-03-01T09:30', '2025-03-01T09:30:00+01:00' -> the stored form (UTC;
    no zone given means UTC)."""
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise BadRequestError(f"{text!r} is not a date or time.",
                              hint="Use ISO 8601, e.g. 2025-03-01 or 2025-03-01T09:30:00Z.") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def canonical_json(value: object) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)


# json.dumps(fields, separators=(",", ":")), without building an encoder per call: verification
# runs this once per event.
CHAIN_JSON = json.JSONEncoder(separators=(",", ":")).encode


def chain_hash(seq: int, at: str, actor: str, role: str, collection: str | None,
               request_id: str | None, action: str, outcome: str, details: str,
               secret_digest: str | None, prev_hash: str) -> str:
    fields = [FORMAT, seq, at, actor, role, collection, request_id, action, outcome, details,
              secret_digest, prev_hash]
    return hashlib.sha256(CHAIN_JSON(fields).encode("ascii")).hexdigest()


def secret_payload(secret: dict) -> tuple[str, str]:
    """The plain payload of a secret part (salted) and its digest."""
    text = canonical_json({"salt": os.urandom(16).hex(), "data": secret})
    return text, hashlib.sha256(text.encode("utf-8")).hexdigest()


def payload_digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def secret_aad(digest: str) -> bytes:
    """What a sealed payload is bound to: the digest the chain holds."""
    return f"audit/{digest}".encode()
