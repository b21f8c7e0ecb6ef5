"""Access and upkeep: portal sessions, API keys, collections, and index syncs over HTTP."""

from __future__ import annotations

from typing import Callable

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, Field

from ingest.indexer import Indexer
from ingest.pipeline import IngestReport
from rag.core.errors import BadRequestError, NotFoundError
from rag.library import Library
from service.auth import SESSION_TTL_S, KeyStore, Principal, key_id_of
from service.deps import SESSION_COOKIE, LibraryDep, PrincipalDep, actor_of, indexer_for

router = APIRouter(tags=["access and upkeep"])


class SessionRequest(BaseModel):
    key: str = Field(description="An API key (from `archivist keys create`).")


class KeyRequest(BaseModel):
    role: str = Field(description="reader, editor or admin.")
    collections: list[str] | None = Field(None, description="Collections granted (default: all).")
    note: str | None = Field(None, description="Who or what the key is for.")


class IngestRequest(BaseModel):
    collection: str | None = Field(None, description="One collection; all you may write if omitted.")


class ModelRequest(BaseModel):
    name: str | None = Field(None, description="Model to switch to (`archivist models list`).")
    previous: bool = Field(False, description="Switch back to the previous model instead.")


class CollectionRequest(BaseModel):
    name: str = Field(description="Lower-case letters, digits, '-' or '_'.", examples=["finance"])
    embed_model: str | None = Field(
        None, description="Its embedding model (default: the server's ARCHIVIST_EMBED_MODEL).",
        examples=["multilingual-e5-small"])


class ReindexRequest(IngestRequest):
    embed_model: str | None = Field(
        None, description="Rebuild the one collection named with this embedding model and make "
                          "it the collection's choice.", examples=["multilingual-e5-small"])


def _keys(request: Request) -> KeyStore:
    return request.app.state.keys


@router.post("/v1/session", summary="Log in with an API key (sets a session cookie)")
def login(body: SessionRequest, request: Request, response: Response, library: LibraryDep) -> dict:
    keys = _keys(request)
    principal = keys.require(body.key)
    library.audit.append(actor_of(principal), "session.start")
    response.set_cookie(SESSION_COOKIE, keys.start_session(principal), max_age=SESSION_TTL_S,
                        httponly=True, samesite="strict", secure=request.url.scheme == "https")
    return {"key_id": principal.key_id, "role": principal.role, "collections": principal.collections}


@router.get("/v1/session", summary="Who the caller is")
def whoami(who: PrincipalDep) -> dict:
    return {"key_id": who.key_id, "role": who.role, "collections": who.collections}


@router.delete("/v1/session", status_code=204, summary="Log out")
def logout(request: Request) -> Response:
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        _keys(request).end_session(token)
    response = Response(status_code=204)
    response.delete_cookie(SESSION_COOKIE)
    return response


@router.get("/v1/keys", summary="List API keys (admin)")
def list_keys(request: Request, who: PrincipalDep) -> dict:
    who.check("admin")
    return {"keys": _keys(request).list()}


@router.post("/v1/keys", status_code=201, summary="Create an API key (admin)")
def create_key(body: KeyRequest, request: Request, library: LibraryDep, who: PrincipalDep) -> dict:
    """The key is in this reply only; the server keeps its hash."""
    who.check("admin")
    details = {"role": body.role, "collections": body.collections, "note": body.note}
    with library.audit.operation(actor_of(who), "key.create", details=details) as result:
        secret = _keys(request).create(body.role, body.collections, body.note)
        result["key_id"] = key_id_of(secret)
    return {"key": secret}


@router.delete("/v1/keys/{key_id}", status_code=204, summary="Revoke an API key (admin)")
def revoke_key(key_id: str, request: Request, library: LibraryDep, who: PrincipalDep) -> Response:
    who.check("admin")
    with library.audit.operation(actor_of(who), "key.revoke", details={"key_id": key_id}):
        if not _keys(request).revoke(key_id):
            raise NotFoundError(f"No active key {key_id!r}.", hint="GET /v1/keys lists them.")
    return Response(status_code=204)


@router.get("/v1/collections", summary="List collections")
def list_collections(library: LibraryDep, who: PrincipalDep) -> dict:
    """The collections the caller may read, with their document counts."""
    collections = [library.collection(name) for name in library.names() if who.can("read", name)]
    return {"collections": [{"name": c.name, "documents": len(Indexer(c).documents()),
                             "embed_model": c.embed_model} for c in collections]}


@router.post("/v1/collections", status_code=201, summary="Create a collection")
def create_collection(body: CollectionRequest, library: LibraryDep, who: PrincipalDep) -> dict:
    """Makes data/NAME/ a collection: its own index, searched only when named (admin)."""
    who.check("admin")
    details = {"embed_model": body.embed_model} if body.embed_model else None
    with library.audit.operation(actor_of(who), "collection.create", body.name, details):
        collection = library.create(body.name, body.embed_model)
    return {"name": body.name, "embed_model": collection.embed_model}


def _each_collection(body: IngestRequest, library: Library, who: Principal, action: str,
                     run: Callable[[Indexer], IngestReport]) -> dict:
    if body.collection:
        names = [body.collection]
    else:
        names = [name for name in library.names() if who.can(action, name)]
        if not names:
            who.check(action, library.settings.collection)  # 403 with the usual hint
    indexers = {name: indexer_for(library, who, name, action) for name in names}
    return IngestReport.by_collection({name: run(indexer) for name, indexer in indexers.items()})


@router.post("/v1/ingest", summary="Sync collections with their folders now")
def ingest(body: IngestRequest, library: LibraryDep, who: PrincipalDep) -> dict:
    """What `archivist ingest` does, in the server (which it asks to, while one runs):
    totals, and each collection's counts.  Needs the write role on each collection."""
    return _each_collection(body, library, who, "write", lambda indexer: indexer.ingest())


@router.post("/v1/reindex", summary="Rebuild collections' indexes with the current models")
def reindex(body: ReindexRequest, library: LibraryDep, who: PrincipalDep) -> dict:
    """What `archivist reindex` does (admin): searches go on using the old index until the
    new one is complete.  With `embed_model`, the collection named is rebuilt with that model,
    which becomes its choice."""
    if body.embed_model and not body.collection:
        raise BadRequestError("`embed_model` changes one collection's model: name it.",
                              hint='{"collection": "NAME", "embed_model": "' + body.embed_model + '"}')

    def run(indexer: Indexer) -> IngestReport:
        return indexer.reindex(embed_model=body.embed_model, choose=lambda model: (
            library.choose_embed_model(indexer.name, model)))
    return _each_collection(body, library, who, "admin", run)


@router.post("/v1/admin/model", summary="Switch the chat model (admin)")
def switch_model(body: ModelRequest, library: LibraryDep, who: PrincipalDep) -> dict:
    """Loads the model, then swaps it in for the next generation: answers already streaming
    finish on the old one.  Recorded in the models folder (active.json) only once loaded, so a
    file llama.cpp cannot load never becomes the choice; the one replaced becomes `previous`."""
    import time

    who.check("admin")
    models = library.models
    chosen = models.repo.choose(body.name, body.previous)  # refusals before any loading
    details = {"from": models.repo.state().get("current"), "to": chosen.name}
    with library.audit.operation(actor_of(who), "model.switch", details=details) as result:
        started = time.perf_counter()
        generator = models.switch_llm(chosen.path, then=lambda: models.repo.use(chosen.name))
        load_s = time.perf_counter() - started
        result["sha256"] = models.llm_sha256(generator)
    return {"active": chosen.name, "previous": models.repo.state()["previous"],
            "sha256": result["sha256"], "template": getattr(generator, "template", None),
            "load_s": round(load_s, 3)}
