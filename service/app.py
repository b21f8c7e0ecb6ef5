"""The HTTP app.  `create_app(settings)` wires the routers, middleware and start-up; it holds no
logic of its own (routes are in service/routes/, answering in rag/, writing in ingest/)."""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager, nullcontext

from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool

from ingest.indexer import Indexer
from ingest.watcher import FolderWatcher
from rag.audit.events import Actor
from rag.core.errors import ArchivistError
from rag.core.offline import enforce_offline
from rag.core.settings import Settings
from rag.library import Library
from service import errors, handoff, portal
from service.audit_trail import record_start
from service.auth import KeyStore
from service.metrics import Metrics
from service.middleware import BodyLimitMiddleware
from service.observe import ObserveMiddleware
from service.routes import admin, answers, audit, documents, openai, system
from service.security import BrowserGuard, allowed_hosts

log = logging.getLogger(__name__)

_WILDCARD_HOSTS = ("0.0.0.0", "::", "")


def start_up(library: Library) -> None:
    """Before the first request: load the models, and repair each collection's keyword index if
    it is out of step (readers refuse such an index; only the writer rebuilds it).  Problems are
    logged, and the server keeps serving: /v1/health and the error replies explain them."""
    try:
        library.models.warm_up()
    except ArchivistError as exc:
        log.error("start-up: %s", exc)
    for name in library.names():
        try:
            if Indexer(library.collection(name), Actor.system("server")).repair():
                log.warning("collection %s: rebuilt its keyword index", name)
        except ArchivistError as exc:  # keep serving: its requests explain the problem
            log.error("start-up: collection %s: %s", name, exc)


def create_app(settings: Settings, library: Library | None = None) -> FastAPI:
    """`library`: ready made (tests inject one with fake models); else built from `settings`."""
    enforce_offline()
    library = library or Library(settings)
    library.open_stores()  # a key that is not the one in force stops the server here
    server = settings.server

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        serve_at = app.state.serve_at  # (host, port) under `archivist serve`
        if app.state.keys.closed:  # the app served before, and its last shutdown closed them
            app.state.keys = KeyStore(settings.keys_db)
        with handoff.register(settings, *serve_at) if serve_at else nullcontext() as token:
            app.state.local_token = token
            await run_in_threadpool(start_up, library)
            await run_in_threadpool(record_start, library, serve_at)
            watcher = None
            if settings.ingest.watch and settings.data_dir.is_dir():
                watcher = FolderWatcher(library, settings.ingest.watch_interval_s,
                                        settings.ingest.watch_settle_s)
                watcher.start()
                log.info("watching %s for changes", settings.data_dir)
            yield
            if watcher:
                await run_in_threadpool(watcher.stop)
            # A PostgreSQL key store holds a server connection (a SQLite one a file handle).
            app.state.keys.close()

    app = FastAPI(title="Archivist", version="0.1.0", lifespan=lifespan,
                  description="Offline question answering over your documents, with citations.")
    app.state.library = library
    app.state.keys = KeyStore(settings.keys_db)
    if not app.state.keys.any_keys():
        log.warning("no API keys: every request is trusted, so serve on loopback only "
                    "(`archivist keys create --role admin` to add one)")
    app.state.serve_at = None  # set by `archivist serve`; see service/handoff.py
    app.state.local_token = None
    app.state.metrics = metrics = Metrics(library)

    # Outermost last: every request is counted and logged, refused ones included; the browser
    # checks run before a body is read.
    app.add_middleware(BodyLimitMiddleware, max_bytes=int(server.max_body_mb * 1e6))
    app.add_middleware(BrowserGuard, hosts=allowed_hosts(server.host, server.allowed_hosts),
                       origins=server.allowed_origins, wildcard_bind=server.host in _WILDCARD_HOSTS)
    app.add_middleware(ObserveMiddleware, metrics=metrics)

    for router in (answers.router, documents.router, admin.router, system.router, openai.router,
                   audit.router):
        app.include_router(router)
    errors.install(app)
    portal.mount(app)  # the web pages at /, /library and /login
    return app
