"""Errors as HTTP replies: which status each error means, and the body shape every route uses
(`detail` and `hint`; OpenAI-compatible routes add OpenAI's `error` object)."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from ingest.documents import UploadError
from ingest.lock import IndexBusyError
from rag.core.collection_folders import CollectionNameError
from rag.core.errors import ArchivistError, BadRequestError, NotFoundError
from rag.models.generation_gate import QueueFullError
from service.audit_trail import record_refusal
from service.auth import AuthError
from service.routes import openai

log = logging.getLogger(__name__)


def status_for(exc: ArchivistError) -> int:
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


def error_reply(path: str, status: int, message: str, hint: str | None,
                headers: dict[str, str] | None = None) -> JSONResponse:
    """The error body for a request to `path`."""
    if openai.is_openai_path(path):
        return openai.error_response(status, message, hint, headers=headers)
    return JSONResponse({"detail": message, "hint": hint}, status_code=status, headers=headers)


def install(app: FastAPI) -> None:
    """The app's exception handlers, and an OpenAPI document that describes its error bodies."""

    @app.exception_handler(ArchivistError)
    async def archivist_error(request: Request, exc: ArchivistError) -> JSONResponse:
        if isinstance(exc, AuthError):
            await run_in_threadpool(record_refusal, request, exc)  # the audit log is a database
        headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, QueueFullError) else None
        return error_reply(request.url.path, status_for(exc), exc.message, exc.hint, headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'] if p != 'body') or 'body'}: {e['msg']}"
                             for e in exc.errors())
        if openai.is_openai_path(request.url.path):
            return openai.error_response(422, f"Invalid request: {problems}.",
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
