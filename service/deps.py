"""FastAPI dependencies shared by the routers: the library of collections and the caller."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from service import handoff
from service.auth import LOCAL_ADMIN, AuthError, KeyStore, Principal
from service.engine import Engine
from service.library import Library

SESSION_COOKIE = "archivist_session"


def get_library(request: Request) -> Library:
    return request.app.state.library


def authenticate(request: Request) -> Principal:
    """The caller: by `Authorization: Bearer KEY`, `X-API-Key: KEY` or the portal's session
    cookie.  With no keys configured the server is loopback-only and everyone is a local admin."""
    keys: KeyStore = request.app.state.keys
    if not keys.any_keys():
        return LOCAL_ADMIN
    if handoff.token_matches(request.app.state.local_token, request.headers.get(handoff.TOKEN_HEADER)):
        return LOCAL_ADMIN  # `archivist ingest` on this machine, handing its work over
    header = request.headers.get("authorization", "")
    secret = header[7:].strip() if header.lower().startswith("bearer ") else request.headers.get("x-api-key")
    if secret:
        return keys.require(secret)
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        principal = keys.session(token)
        if principal is not None:
            return principal
        raise AuthError("The session has expired.", hint="Log in again with your API key.")
    raise AuthError("This server needs an API key.",
                    hint="Send the header 'Authorization: Bearer YOUR_KEY', or log in to the portal.")


LibraryDep = Annotated[Library, Depends(get_library)]
PrincipalDep = Annotated[Principal, Depends(authenticate)]


def engine_for(library: Library, principal: Principal, collection: str | None,
               action: str = "read") -> Engine:
    """The collection's engine, if the caller may `action` on it (unknown collections are 404
    only for callers allowed to see them: others get 403 and learn nothing)."""
    name = collection or library.settings.collection
    principal.check(action, name)
    return library.engine(name)
