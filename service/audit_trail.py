"""What the HTTP layer records in the audit log itself: refused credentials and refused rights,
and the server's start with its settings.  Everything else is recorded where it happens (rag/'s
assistant for questions, ingest/'s indexer for changes, the admin routes for keys and models).
"""

from __future__ import annotations

import logging

from fastapi import Request

from rag.audit.events import Actor
from rag.core.errors import ArchivistError
from rag.library import Library
from service.auth import AuthError, key_id_of
from service.logs import request_id

log = logging.getLogger(__name__)

_CREDENTIAL_HEADERS = ("authorization", "x-api-key")


def record_refusal(request: Request, exc: AuthError) -> None:
    """A 403 (a known caller without the right), or a 401 for credentials that were presented
    (a wrong or revoked key, an expired session, a failed login).  A request that presents none
    is not a failed authentication: the access log has it."""
    presented = [h for h in _CREDENTIAL_HEADERS if request.headers.get(h)]
    login = request.url.path == "/v1/session" and request.method == "POST"
    if exc.principal is None and not presented and not login and not request.cookies:
        return
    details = {"method": request.method, "path": request.url.path, "reason": exc.message,
               "client": request.client.host if request.client else None}
    if exc.principal is not None:
        actor = Actor.key(exc.principal.key_id, exc.principal.role, request_id.get())
        action, outcome = "access.denied", "denied"
    else:
        header = request.headers.get("x-api-key") or request.headers.get("authorization", "")
        claimed = key_id_of(header.removeprefix("Bearer ").strip()) if header else None
        actor = Actor("unauthenticated", "none", request_id.get())
        action, outcome = "auth.failed", "failed"
        details["claimed_key_id"] = claimed
        details["credential"] = "login form" if login else ", ".join(presented) or "session cookie"
    try:
        request.app.state.library.audit.append(actor, action, outcome, None, details)
    except ArchivistError:  # the refusal stands; the server log keeps what the audit log could not
        log.exception("could not record a refused request in the audit log")


def record_start(library: Library, serve_at: tuple[str, int] | None) -> None:
    """The settings the server starts with, secrets masked (key files by path and key id)."""
    settings = library.settings
    shown = settings.model_dump(mode="json")  # SecretStr fields come out as '**********'
    audit = library.audit
    audit.append(Actor.system("server"), "server.start", "ok", None, {
        "serve_at": f"{serve_at[0]}:{serve_at[1]}" if serve_at else None,
        "settings": shown, "encryption_key_id": audit.keyring.key_id,
        "signing_key_fingerprint": audit.signer.fingerprint if audit.signer else None})
