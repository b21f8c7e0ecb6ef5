"""HTTP API.  `create_app(settings)` builds an app; routes validate, call the Engine, shape the reply."""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager
from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from ingest.collections import CollectionNameError
from rag.errors import ArchivistError, NotFoundError
from rag.offline import enforce_offline
from rag.retriever import SearchFilter
from rag.settings import Settings
from rag.types import Answer, SearchResults
from service import openai_api
from service.engine import BadRequestError, Engine, IndexBusyError
from service.api_documents import router as documents_router
from service.deps import LibraryDep
from service.documents import UploadError
from service.library import Library
from service.metrics import Metrics
from service.observe import ObserveMiddleware
from service.queue import GenerationGate, QueueFullError
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


class CollectionRequest(BaseModel):
    name: str = Field(description="Lower-case letters, digits, '-' or '_'.", examples=["finance"])


class JsonBodyMiddleware:
    """Read a POST body sent as form data or with no Content-Type as JSON.

    `curl -d '{...}'` labels JSON application/x-www-form-urlencoded, which FastAPI would reject.
    Multipart uploads and explicit JSON pass through untouched.
    """

    _RELABEL = (b"", b"application/x-www-form-urlencoded")

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            headers = dict(scope["headers"])
            if headers.get(b"content-type", b"").split(b";")[0].strip().lower() in self._RELABEL:
                rest = [(k, v) for k, v in scope["headers"] if k != b"content-type"]
                scope = dict(scope, headers=rest + [(b"content-type", b"application/json")])
        await self.app(scope, receive, send)


def _status_for(exc: ArchivistError) -> int:
    if isinstance(exc, UploadError):
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
    app.state.engine = library.default
    app.state.gate = gate = GenerationGate(settings.max_queue)
    app.state.metrics = metrics = Metrics(
        gate, lambda: [(name, library.engine(name)) for name in library.names()])
    metrics.watch(library.default)  # the library shares its listeners with every collection
    # Inside JsonBodyMiddleware, which may replace the scope: this one must see the scope the
    # router writes the matched route into.
    app.add_middleware(ObserveMiddleware, metrics=metrics)
    app.add_middleware(JsonBodyMiddleware)
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

    @app.post("/v1/ask", response_model=Answer, summary="Answer a question from the documents")
    def ask(body: QueryRequest, request: Request, library: LibraryDep):
        """Retrieve the best passages and answer with the local model, citing them as [n].

        `refused` is true, with a `reason`, when the documents hold nothing relevant enough.
        With `"stream": true` the reply is an event stream (see the `stream` field)."""
        engine = library.engine(body.collection)
        engine.check_query(body.question, body.top_k)  # a 422 before queueing or streaming
        events = generation(request, engine.ask_events(body.question, body.top_k,
                                                       filt=body.filter(), debug=body.debug))
        if body.stream:
            return event_stream(request, events)
        return events.result()["done"]

    @app.post("/v1/search", response_model=SearchResults, summary="Rank passages for a question")
    def search(body: QueryRequest, library: LibraryDep) -> SearchResults:
        """Retrieval only: the passages an answer would be based on, best first."""
        return SearchResults(results=library.engine(body.collection).search(body.question, body.top_k, body.filter()))

    @app.post("/v1/chat", response_model=ChatReply, summary="Ask within a conversation")
    def chat(body: ChatRequest, request: Request, library: LibraryDep):
        """Like /v1/ask, but follow-up questions ("and its page size?") are understood in the
        context of the conversation's earlier turns, which are kept on the server.  Streams
        like /v1/ask, with a first `conversation` event."""
        engine = library.engine(body.collection)
        engine.check_query(body.question, body.top_k)
        if body.conversation_id is not None:
            try:
                engine.conversation(body.conversation_id)  # a 404 before queueing or streaming
            except NotFoundError as exc:
                raise NotFoundError(exc.message, hint="Leave conversation_id out to start a new "
                                    "conversation.") from exc
        events = generation(request, engine.chat_events(body.question, body.conversation_id,
                                                        body.top_k, body.filter()))
        if body.stream:
            return event_stream(request, events)
        seen = events.result()
        return ChatReply(conversation_id=seen["conversation"], **seen["done"].model_dump())

    @app.get("/v1/conversations/{conversation_id}", summary="A conversation's turns")
    def conversation(conversation_id: str, library: LibraryDep) -> dict:
        """Every question and answer of the conversation, oldest first."""
        return {"conversation_id": conversation_id,
                "turns": library.default.conversation(conversation_id)}

    @app.get("/v1/answers/{answer_id}", summary="An answer's audit record")
    def answer_record(answer_id: str, library: LibraryDep) -> dict:
        """The answer as returned, with what produced it: query searched, passages (chunk ids and
        content hashes), model file and sha256, embedding model, index version, parameters,
        timings."""
        return library.default.answer_record(answer_id)  # records are shared by collections

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

    @app.get("/v1/collections", summary="List collections")
    def list_collections(library: LibraryDep) -> dict:
        """Every collection with its folder and document count."""
        return {"collections": [{"name": name, "documents": len(library.engine(name).documents())}
                                for name in library.names()]}

    @app.post("/v1/collections", status_code=201, summary="Create a collection")
    def create_collection(body: CollectionRequest, library: LibraryDep) -> dict:
        """Makes data/NAME/ a collection: its own index, searched only when named."""
        library.create(body.name)
        return {"name": body.name}

    return app
