"""Reading the log: filtered listings (`archivist audit list`, GET /v1/audit, the portal's audit
page), with each secret part opened where the key is at hand, and verification of the store."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from rag.audit.checkpoints import Verifier
from rag.audit.events import parse_time
from rag.audit.log import AuditLog
from rag.audit.verification import Report, verify_chain
from rag.core.errors import ArchivistError, BadRequestError

MAX_LIMIT = 1000


@dataclass(frozen=True)
class EventQuery:
    """Filters, as people type them: times in ISO 8601 (a date alone is its midnight, UTC),
    `until` exclusive, `action` exact or a prefix ending in '*' ('document.*')."""

    since: str | None = None
    until: str | None = None
    actor: str | None = None
    collection: str | None = None
    action: str | None = None
    outcome: str | None = None
    before_seq: int | None = None
    limit: int = 100

    def to_dict(self) -> dict:
        return {k: v for k, v in asdict(self).items() if v is not None}


def list_events(log: AuditLog, query: EventQuery, open_secrets: bool = True) -> dict:
    """The matching events, newest first, and where the next page starts (`before_seq`)."""
    if not 1 <= query.limit <= MAX_LIMIT:
        raise BadRequestError(f"limit must be between 1 and {MAX_LIMIT}, got {query.limit}.")
    events = log.events(since=parse_time(query.since) if query.since else None,
                        until=parse_time(query.until) if query.until else None,
                        actor=query.actor, collection=query.collection, action=query.action,
                        outcome=query.outcome, before_seq=query.before_seq, limit=query.limit)
    shown = []
    for event in events:
        item = event.public()
        if open_secrets and event.secret_digest is not None:
            try:
                item["secret"] = log.open_secret(event)
            except ArchivistError as exc:  # one unreadable event must not hide the others
                item["secret_error"] = exc.message
        shown.append(item)
    seq, head = log.head()
    more = len(events) == query.limit
    return {"events": shown, "head": {"seq": seq, "hash": head},
            "next_before_seq": events[-1].seq if more and events else None}


def verify_log(log: AuditLog, public_key: Verifier | None = None,
               expect_head: str | None = None) -> Report:
    """The store's chain and checkpoints (no decryption key needed)."""
    return verify_chain(log.rows(), log.checkpoints(), public_key, expect_head)


def check_sealed(log: AuditLog) -> tuple[int, int | None, str | None]:
    """Open every sealed part with the log's keyring and compare it with its digest (`audit
    verify --decrypt`): (parts checked, first bad seq, why)."""
    checked = 0
    for event in log.events(newest_first=False):
        if event.secret_digest is None:
            continue
        try:
            log.open_secret(event)
        except ArchivistError as exc:
            return checked, event.seq, exc.message
        checked += 1
    return checked, None, None
