"""FastAPI dependencies shared by the routers: the library of collections, the caller, and the
collection a request may act on."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import APIKeyCookie, APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from ingest.indexer import Indexer
from rag.answering.assistant import Assistant
from rag.audit.events import Actor
from rag.library import Collection, Library
from service import handoff
from service.auth import LOCAL_ADMIN, AuthError, KeyStore, Principal
from service.logs import request_id

SESSION_COOKIE = "archivist_session"


def get_library(request: Request) -> Library:
    return request.app.state.library


# The ways to authenticate, declared as OpenAPI security schemes so /docs shows them (and its
# "Authorize" button works).  auto_error=False: which one is required depends on whether any
# key exists, so authenticate() decides and explains.
bearer_scheme = HTTPBearer(auto_error=False, scheme_name="API key (Bearer)",
                           description="`Authorization: Bearer ak_...`, a key from "
                                       "`archivist keys create`.")
api_key_scheme = APIKeyHeader(name="X-API-Key", auto_error=False, scheme_name="API key (header)",
                              description="The same key in an `X-API-Key` header.")
session_scheme = APIKeyCookie(name=SESSION_COOKIE, auto_error=False, scheme_name="Portal session",
                              description="The cookie POST /v1/session sets (the web portal).")


def authenticate(request: Request,
                 bearer: Annotated[HTTPAuthorizationCredentials | None, Security(bearer_scheme)],
                 api_key: Annotated[str | None, Security(api_key_scheme)],
                 session: Annotated[str | None, Security(session_scheme)]) -> Principal:
    """The caller: by `Authorization: Bearer KEY`, `X-API-Key: KEY` or the portal's session
    cookie.  With no keys configured the server is loopback-only and everyone is a local admin."""
    keys: KeyStore = request.app.state.keys
    if not keys.any_keys():
        return LOCAL_ADMIN
    if handoff.token_matches(request.app.state.local_token, request.headers.get(handoff.TOKEN_HEADER)):
        return LOCAL_ADMIN  # `archivist ingest` on this machine, handing its work over
    secret = bearer.credentials.strip() if bearer else api_key
    if secret:
        return keys.require(secret)
    if session:
        principal = keys.session(session)
        if principal is not None:
            return principal
        raise AuthError("The session has expired.", hint="Log in again with your API key.")
    raise AuthError("This server needs an API key.",
                    hint="Send the header 'Authorization: Bearer YOUR_KEY', or log in to the portal.")


LibraryDep = Annotated[Library, Depends(get_library)]
PrincipalDep = Annotated[Principal, Depends(authenticate)]


def actor_of(principal: Principal) -> Actor:
    """The caller as the audit log names it: key id and role, and this request's id."""
    return Actor.key(principal.key_id, principal.role, request_id.get())


def collection_for(library: Library, principal: Principal, name: str | None,
                   action: str = "read") -> Collection:
    """The collection, if the caller may `action` on it (unknown collections are 404 only for
    callers allowed to see them: others get 403 and learn nothing)."""
    name = name or library.settings.collection
    principal.check(action, name)
    return library.collection(name)


def assistant_for(library: Library, principal: Principal, name: str | None) -> Assistant:
    return collection_for(library, principal, name, "read").assistant


def indexer_for(library: Library, principal: Principal, name: str | None,
                action: str = "write") -> Indexer:
    return Indexer(collection_for(library, principal, name, action), actor_of(principal))
