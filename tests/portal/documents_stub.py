"""A stand-in for the documents API (GET/POST /v1/documents, DELETE, reindex), written to the
contract the library page uses, for as long as this branch's app does not have the real one.
Test-only: files are written into the collection's folder and ingested synchronously."""

from __future__ import annotations

import hashlib

from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.responses import JSONResponse


def has_documents_api(app: FastAPI) -> bool:
    return any(getattr(route, "path", None) == "/v1/documents" for route in app.routes)


def _id(source: str) -> str:
    return hashlib.sha256(source.encode()).hexdigest()[:16]


def add_documents_stub(app: FastAPI) -> None:
    router = APIRouter()

    def shape(engine, record) -> dict:
        return {"id": _id(record.source), "collection": engine.collection, "source": record.source,
                "status": record.status, "error": record.error, "chunks": record.chunks,
                "size": record.size, "updated_at": record.mtime_ns / 1e9}

    def find(engine, document_id):
        for record in engine.documents():
            if _id(record.source) == document_id:
                return record
        return None

    @router.get("/v1/documents")
    def documents(collection: str | None = None) -> dict:
        engine = app.state.library.engine(collection)
        return {"documents": [shape(engine, r) for r in engine.documents()]}

    @router.post("/v1/documents", status_code=201)
    async def upload(request: Request, collection: str | None = None):
        engine = app.state.library.engine(collection)
        names = []
        async with request.form() as form:
            for upload in form.getlist("file"):
                (engine.data_dir / upload.filename).write_bytes(await upload.read())
                names.append(upload.filename)
        if not names:
            return JSONResponse({"detail": "No file.", "hint": "Send field 'file'."}, status_code=422)
        report = engine.ingest()
        docs = [shape(engine, r) for r in engine.documents() if r.source in names]
        return {"documents": docs, "report": {"added": report.added, "failed": report.failed}}

    @router.delete("/v1/documents/{document_id}", status_code=204)
    def delete(document_id: str, collection: str | None = None):
        engine = app.state.library.engine(collection)
        record = find(engine, document_id)
        if record is None:
            return JSONResponse({"detail": "No such document.", "hint": None}, status_code=404)
        (engine.data_dir / record.source).unlink()
        engine.ingest()
        return Response(status_code=204)

    @router.post("/v1/documents/{document_id}/reindex")
    def reindex(document_id: str, collection: str | None = None):
        engine = app.state.library.engine(collection)
        record = find(engine, document_id)
        if record is None:
            return JSONResponse({"detail": "No such document.", "hint": None}, status_code=404)
        engine.ingest()
        return shape(engine, find(engine, document_id))

    app.include_router(router)
