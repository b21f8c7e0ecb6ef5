"""/v1/audit: the audit log, for admins only (others get 403 and nothing else).  Reading it is
itself recorded, with the filters used."""

from __future__ import annotations

from fastapi import APIRouter, Query

from rag.audit.reading import MAX_LIMIT, EventQuery, list_events, verify_log
from service.deps import LibraryDep, PrincipalDep, actor_of

router = APIRouter(tags=["audit"])


@router.get("/v1/audit", summary="Audit log events (admin)")
def audit_events(
        library: LibraryDep, who: PrincipalDep,
        since: str | None = Query(None, description="From this time (ISO 8601; a date is its "
                                  "midnight UTC), e.g. 2025-03-01."),
        until: str | None = Query(None, description="Before this time (exclusive)."),
        actor: str | None = Query(None, description="An API key id, or e.g. 'local CLI (root)'."),
        collection: str | None = Query(None, description="One collection."),
        action: str | None = Query(None, description="e.g. 'ask', or a prefix: 'document.*'."),
        outcome: str | None = Query(None, description="e.g. answered, refused, failed, denied."),
        before_seq: int | None = Query(None, description="Events before this sequence number "
                                       "(the previous page's next_before_seq)."),
        limit: int = Query(100, ge=1, le=MAX_LIMIT)) -> dict:
    """Newest first: who, when, which collection and request, what, with what outcome, the
    public details, and the sealed part (question, answer, ...) opened with the server's key.
    `head` is the chain's last event and hash, this read's own record included (what
    `archivist audit verify --expect-head` takes)."""
    who.check("admin")
    query = EventQuery(since, until, actor, collection, action, outcome, before_seq, limit)
    log = library.audit
    listing = list_events(log, query)
    log.append(actor_of(who), "audit.list", "ok", None,
               {"filters": query.to_dict(), "events": len(listing["events"])})
    return {**listing, "head": dict(zip(("seq", "hash"), log.head()))}


@router.get("/v1/audit/verify", summary="Verify the audit log's chain (admin)")
def audit_verify(library: LibraryDep, who: PrincipalDep,
                 expect_head: str | None = Query(None, description="A head hash noted earlier: "
                                                 "also catches events cut off the end.")) -> dict:
    """What `archivist audit verify` reports, checked with the public half of the server's
    signing key."""
    who.check("admin")
    log = library.audit
    return verify_log(log, log.signer.public if log.signer else None, expect_head).to_dict()
