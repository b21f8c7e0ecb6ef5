"""HTTP API.  `create_app(settings)` builds an app; routes validate, call the Engine, shape the reply."""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager, nullcontext
from typing import Callable
from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from ingest.collections import CollectionNameError
from ingest.pipeline import IngestReport
from rag.errors import ArchivistError, NotFoundError
from rag.offline import enforce_offline
from rag.retriever import SearchFilter
from rag.settings import Settings
from rag.types import Answer, SearchResults
from service import handoff, openai_api
from service.openai_api import SSE_EVENT
from service.engine import BadRequestError, Engine, IndexBusyError
from service.api_documents import router as documents_router
from service.auth import SESSION_TTL_S, AuthError, KeyStore
from service.deps import SESSION_COOKIE, LibraryDep, PrincipalDep, engine_for
from service.documents import UploadError
from service.library import Library
from service import portal
from service.metrics import Metrics
from service.observe import ObserveMiddleware
from service.queue import GenerationGate, QueueFullError
from service.security import BrowserGuard, allowed_hosts
from service.streams import event_stream, generation
from service.watcher import FolderWatcher

log = logging.getLogger(__name__)


class QueryRequest(BaseModel):
    question: str = Field(description="The question, in any language.", examples=["How long is the warranty?"])
    collection: str | None = Field(None, description="Collection to search (default: "
                                   "ARCHIVIST_COLLECTION, 'default'); results never cross collections.")
    top_k: int | None = Field(None, description="Passages to retrieve (default: ARCHIVIST_TOP_K).")
    path: str | None = Field(None, description="Only files under this path prefix or matching this "
                             "glob, e.g. 'reports/' or 'finance/**/*.pdf'.")
    types: list[str] | None = Field(None, description="Only these file types, e.g. [\"pdf\", \"docx\"].")

    debug: bool = Field(False, description="Ask only: include prompt packing details.")
    stream: bool = Field(False, description="Ask and chat: reply with Server-Sent Events: "
                         "`citations`, then `token` events as the model writes, then `done` with "
                         "the verified answer. Disconnecting stops the generation.")

    def filter(self) -> SearchFilter | None:
        filt = SearchFilter(path=self.path, types=tuple(self.types or ()))
        return filt if filt.active else None


class ChatRequest(QueryRequest):
    question: str = Field(description="The next message of the conversation.")
    conversation_id: str | None = Field(None, description="Conversation to continue; leave out "
                                        "to start one.")


class ChatReply(Answer):
    conversation_id: str = Field(description="Pass it back to continue the conversation.")


class Health(BaseModel):
    status: str = Field(description="'ok' when the index is open and models are loaded.")
    chunks: int = Field(description="Chunks in the default collection's index.")
    collection: str = Field(description="The default collection.")
    collections: list[str] = Field(description="Every collection.")
    embed_model: str
    llm_model: str | None = Field(description="GGUF file name, once loaded.")


class SessionRequest(BaseModel):
    key: str = Field(description="An API key (from `archivist keys create`).")


class KeyRequest(BaseModel):
    role: str = Field(description="reader, editor or admin.")
    collections: list[str] | None = Field(None, description="Collections granted (default: all).")
    note: str | None = Field(None, description="Who or what the key is for.")


class IngestRequest(BaseModel):
    collection: str | None = Field(None, description="One collection; all you may write if omitted.")


class CollectionRequest(BaseModel):
    name: str = Field(description="Lower-case letters, digits, '-' or '_'.", examples=["finance"])


# Routes that stream with `"stream": true` reply 200 text/event-stream as well as JSON.
SSE_RESPONSE = {200: {"content": {"text/event-stream": {"schema": SSE_EVENT}},
                      "description": "JSON, or Server-Sent Events with `\"stream\": true`."}}


class BodyLimitMiddleware:
    """Refuse (413) a request body over `max_bytes`, before any route parses it.

    Multipart uploads pass through: /v1/documents limits them by max_file_mb.  A declared
    Content-Length over the limit is refused without reading; otherwise the body is read up to
    the limit and replayed to the app.
    """

    _METHODS = ("POST", "PUT", "PATCH")

    def __init__(self, app, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or scope["method"] not in self._METHODS:
            return await self.app(scope, receive, send)
        headers = dict(scope["headers"])
        if headers.get(b"content-type", b"").lower().startswith(b"multipart/"):
            return await self.app(scope, receive, send)
        try:
            declared = int(headers.get(b"content-length", b"0"))
        except ValueError:
            declared = 0
        if declared > self.max_bytes:
            return await self._refuse(scope, receive, send)
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            more = message.get("more_body", False)
            if size > self.max_bytes:
                return await self._refuse(scope, receive, send)
        body, replayed = b"".join(chunks), False

        async def replay():
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _refuse(self, scope, receive, send) -> None:
        limit_mb = self.max_bytes / 1e6
        message = f"The request body is too large (over {limit_mb:g} MB)."
        hint = "Send a smaller request; upload files with multipart POST /v1/documents."
        if openai_api.is_openai_path(scope["path"]):
            response = openai_api.error_response(413, message, hint)
        else:
            response = JSONResponse({"detail": message, "hint": hint}, status_code=413)
        await response(scope, receive, send)


def _status_for(exc: ArchivistError) -> int:
    if isinstance(exc, (UploadError, AuthError)):
        return exc.status
    if isinstance(exc, (BadRequestError, CollectionNameError)):
        return 422
    if isinstance(exc, NotFoundError):
        return 404
    if isinstance(exc, IndexBusyError):
        return 409
    if isinstance(exc, QueueFullError):
        return 429
    return 503  # the server cannot serve as configured (missing model, index mismatch, ...)


def create_app(settings: Settings, engine: Engine | None = None,
               library: Library | None = None) -> FastAPI:
    """`engine`: the default collection's, ready made (tests inject fakes); `library`: all of them."""
    enforce_offline()
    library = library or Library(settings, engine)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        serve_at = app.state.serve_at  # (host, port) under `archivist serve`
        with handoff.register(settings, *serve_at) if serve_at else nullcontext() as token:
            app.state.local_token = token
            try:
                await run_in_threadpool(library.default.warm_up)
            except ArchivistError as exc:  # keep serving: /v1/health and the error replies explain
                log.error("start-up: %s", exc)
            watcher = None
            if settings.watch and settings.data_dir.is_dir():
                watcher = FolderWatcher(library, settings.watch_interval_s, settings.watch_settle_s)
                watcher.start()
                log.info("watching %s for changes", settings.data_dir)
            yield
            if watcher:
                await run_in_threadpool(watcher.stop)

    app = FastAPI(title="Archivist", version="0.1.0", lifespan=lifespan,
                  description="Offline question answering over your documents, with citations.")
    app.include_router(documents_router)
    app.state.library = library
    app.state.keys = KeyStore(settings.keys_path)
    if not app.state.keys.any_keys():
        log.warning("no API keys: every request is trusted, so serve on loopback only "
                    "(`archivist keys create --role admin` to add one)")
    app.state.engine = library.default
    app.state.serve_at = None  # set by `archivist serve`; see service/handoff.py
    app.state.local_token = None
    app.state.gate = gate = GenerationGate(settings.max_queue)
    app.state.metrics = metrics = Metrics(
        gate, lambda: [(name, library.engine(name)) for name in library.names()])
    metrics.watch(library.default)  # the library shares its listeners with every collection
    # Outermost first: every request is counted and logged, refused ones included; the browser
    # checks run before a body is read.
    app.add_middleware(BodyLimitMiddleware, max_bytes=int(settings.max_body_mb * 1e6))
    app.add_middleware(BrowserGuard, hosts=allowed_hosts(settings.host, settings.allowed_hosts),
                       origins=settings.allowed_origins,
                       wildcard_bind=settings.host in ("0.0.0.0", "::", ""))
    app.add_middleware(ObserveMiddleware, metrics=metrics)
    app.include_router(openai_api.router)

    @app.exception_handler(ArchivistError)
    async def archivist_error(request: Request, exc: ArchivistError) -> JSONResponse:
        status = _status_for(exc)
        headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, QueueFullError) else None
        if openai_api.is_openai_path(request.url.path):
            return openai_api.error_response(status, exc.message, exc.hint, headers=headers)
        return JSONResponse({"detail": exc.message, "hint": exc.hint}, status_code=status,
                            headers=headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'] if p != 'body') or 'body'}: {e['msg']}"
                             for e in exc.errors())
        if openai_api.is_openai_path(request.url.path):
            return openai_api.error_response(422, f"Invalid request: {problems}.",
                                             "See the OpenAI API reference for this endpoint's body.")
        errors = [{k: v for k, v in e.items() if k in ("loc", "msg", "type")} for e in exc.errors()]
        return JSONResponse({"detail": f"Invalid request: {problems}.",
                             "hint": 'Send JSON like {"question": "...", "top_k": 4}.',
                             "errors": jsonable_encoder(errors)}, status_code=422)

    @app.exception_handler(Exception)
    async def unexpected_error(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error")
        return JSONResponse({"detail": "Internal error; the server log has the details."},
                            status_code=500)

    @app.post("/v1/ask", response_model=Answer, responses=SSE_RESPONSE,
              summary="Answer a question from the documents")
    def ask(body: QueryRequest, request: Request, library: LibraryDep, who: PrincipalDep):
        """Retrieve the best passages and answer with the local model, citing them as [n].

        `refused` is true, with a `reason`, when the documents hold nothing relevant enough.
        With `"stream": true` the reply is an event stream (see the `stream` field)."""
        engine = engine_for(library, who, body.collection)
        engine.check_query(body.question, body.top_k)  # a 422 before queueing or streaming
        events = generation(request, engine.ask_events(body.question, body.top_k,
                                                       filt=body.filter(), debug=body.debug))
        if body.stream:
            return event_stream(request, events)
        return events.result()["done"]

    @app.post("/v1/search", response_model=SearchResults, summary="Rank passages for a question")
    def search(body: QueryRequest, library: LibraryDep, who: PrincipalDep) -> SearchResults:
        """Retrieval only: the passages an answer would be based on, best first."""
        engine = engine_for(library, who, body.collection)
        return SearchResults(results=engine.search(body.question, body.top_k, body.filter()))

    @app.post("/v1/chat", response_model=ChatReply, responses=SSE_RESPONSE,
              summary="Ask within a conversation")
    def chat(body: ChatRequest, request: Request, library: LibraryDep, who: PrincipalDep):
        """Like /v1/ask, but follow-up questions ("and its page size?") are understood in the
        context of the conversation's earlier turns, which are kept on the server.  Streams
        like /v1/ask, with a first `conversation` event."""
        engine = engine_for(library, who, body.collection)
        engine.check_query(body.question, body.top_k)
        if body.conversation_id is not None:
            engine.conversation(body.conversation_id)  # a 404 before queueing or streaming
        events = generation(request, engine.chat_events(body.question, body.conversation_id,
                                                        body.top_k, body.filter()))
        if body.stream:
            return event_stream(request, events)
        seen = events.result()
        return ChatReply(conversation_id=seen["conversation"], **seen["done"].model_dump())

    @app.get("/v1/conversations/{conversation_id}", summary="A conversation's turns")
    def conversation(conversation_id: str, library: LibraryDep, who: PrincipalDep) -> dict:
        """Every question and answer of the conversation, oldest first (404 unless the caller may
        read the conversation's collection)."""
        name = library.default.records.conversation_collection(conversation_id)
        if name is None or not who.can("read", name):
            raise NotFoundError(f"No conversation {conversation_id!r}.",
                                hint="Conversation ids come from /v1/chat replies.")
        return {"conversation_id": conversation_id, "collection": name,
                "turns": library.engine(name).conversation(conversation_id)}

    @app.get("/v1/answers/{answer_id}", summary="An answer's audit record")
    def answer_record(answer_id: str, library: LibraryDep, who: PrincipalDep) -> dict:
        """The answer as returned, with what produced it: query searched, passages (chunk ids and
        content hashes), model file and sha256, embedding model, index version, parameters,
        timings (404 unless the caller may read the answer's collection)."""
        record = library.default.records.get_answer(answer_id)  # one store for every collection
        if record is None or not who.can("read", record["collection"]):
            raise NotFoundError(f"No answer {answer_id!r}.",
                                hint="Answer ids come from ask and chat replies.")
        return record

    @app.get("/metrics", summary="Prometheus metrics", response_class=Response)
    def prometheus_metrics() -> Response:
        """Requests and latency by route and status, generation queue, tokens generated and
        tokens/s, ingest counts, index size; Prometheus text format."""
        body, content_type = metrics.render()  # a sync route: reading the index size is I/O
        return Response(body, media_type=content_type)

    @app.get("/v1/health", response_model=Health, summary="Service status")
    def health(library: LibraryDep) -> Health:
        try:
            chunks, status = library.default.store.count(), "ok"
        except ArchivistError as exc:
            chunks, status = 0, f"error: {exc}"
        return Health(status=status, chunks=chunks, collection=settings.collection,
                      collections=library.names(), embed_model=settings.embed_model,
                      llm_model=library.default.loaded_llm_name)

    @app.post("/v1/session", summary="Log in with an API key (sets a session cookie)")
    def login(body: SessionRequest, request: Request, response: Response) -> dict:
        keys: KeyStore = request.app.state.keys
        principal = keys.require(body.key)
        response.set_cookie(SESSION_COOKIE, keys.start_session(principal), max_age=SESSION_TTL_S,
                            httponly=True, samesite="strict", secure=request.url.scheme == "https")
        return {"key_id": principal.key_id, "role": principal.role, "collections": principal.collections}

    @app.get("/v1/session", summary="Who the caller is")
    def whoami(who: PrincipalDep) -> dict:
        return {"key_id": who.key_id, "role": who.role, "collections": who.collections}

    @app.delete("/v1/session", status_code=204, summary="Log out")
    def logout(request: Request) -> Response:
        token = request.cookies.get(SESSION_COOKIE)
        if token:
            request.app.state.keys.end_session(token)
        response = Response(status_code=204)
        response.delete_cookie(SESSION_COOKIE)
        return response

    @app.get("/v1/keys", summary="List API keys (admin)")
    def list_keys(request: Request, who: PrincipalDep) -> dict:
        who.check("admin")
        return {"keys": request.app.state.keys.list()}

    @app.post("/v1/keys", status_code=201, summary="Create an API key (admin)")
    def create_key(body: KeyRequest, request: Request, who: PrincipalDep) -> dict:
        """The key is in this reply only; the server keeps its hash."""
        who.check("admin")
        return {"key": request.app.state.keys.create(body.role, body.collections, body.note)}

    @app.delete("/v1/keys/{key_id}", status_code=204, summary="Revoke an API key (admin)")
    def revoke_key(key_id: str, request: Request, who: PrincipalDep) -> Response:
        who.check("admin")
        if not request.app.state.keys.revoke(key_id):
            raise NotFoundError(f"No active key {key_id!r}.", hint="GET /v1/keys lists them.")
        return Response(status_code=204)

    def sync_collections(body: IngestRequest, library: Library, who, action: str,
                         run: Callable[[Engine], IngestReport]) -> dict:
        if body.collection:
            engine_for(library, who, body.collection, action)
            names = [body.collection]
        else:
            names = [name for name in library.names() if who.can(action, name)]
            if not names:
                who.check(action, library.settings.collection)  # 403 with the usual hint
        return IngestReport.by_collection({name: run(library.engine(name)) for name in names})

    @app.post("/v1/ingest", summary="Sync collections with their folders now")
    def ingest(body: IngestRequest, library: LibraryDep, who: PrincipalDep) -> dict:
        """What `archivist ingest` does, in the server (which it asks to, while one runs):
        totals, and each collection's counts.  Needs the write role on each collection."""
        return sync_collections(body, library, who, "write", lambda engine: engine.ingest())

    @app.post("/v1/reindex", summary="Rebuild collections' indexes with the current models")
    def reindex(body: IngestRequest, library: LibraryDep, who: PrincipalDep) -> dict:
        """What `archivist reindex` does (admin): searches go on using the old index until the
        new one is complete."""
        return sync_collections(body, library, who, "admin", lambda engine: engine.reindex())

    @app.get("/v1/collections", summary="List collections")
    def list_collections(library: LibraryDep, who: PrincipalDep) -> dict:
        """The collections the caller may read, with their document counts."""
        return {"collections": [{"name": name, "documents": len(library.engine(name).documents())}
                                for name in library.names() if who.can("read", name)]}

    @app.post("/v1/collections", status_code=201, summary="Create a collection")
    def create_collection(body: CollectionRequest, library: LibraryDep, who: PrincipalDep) -> dict:
        """Makes data/NAME/ a collection: its own index, searched only when named (admin)."""
        who.check("admin")
        library.create(body.name)
        return {"name": body.name}

    def openapi_schema() -> dict:
        """FastAPI documents 422 as {"detail": [errors]}; this app replies {"detail": str, "hint",
        "errors": [errors]} (and OpenAI routes add "error"): document what is sent."""
        if app.openapi_schema is None:
            from fastapi.openapi.utils import get_openapi

            spec = get_openapi(title=app.title, version=app.version, description=app.description,
                               routes=app.routes)
            schemas = spec.get("components", {}).get("schemas", {})
            if "HTTPValidationError" in schemas:
                schemas["HTTPValidationError"] = {
                    "title": "HTTPValidationError", "type": "object", "required": ["detail"],
                    "properties": {
                        "detail": {"type": "string", "title": "Detail"},
                        "hint": {"anyOf": [{"type": "string"}, {"type": "null"}], "title": "Hint"},
                        "errors": {"type": "array", "title": "Errors",
                                   "items": {"$ref": "#/components/schemas/ValidationError"}},
                        "error": {"type": "object", "title": "Error",
                                  "description": "OpenAI-compatible routes: OpenAI's error shape."},
                    }}
            app.openapi_schema = spec
        return app.openapi_schema

    app.openapi = openapi_schema
    portal.mount(app)  # the web pages at /, /library and /login
    return app
