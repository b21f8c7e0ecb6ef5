"""/v1/documents: upload, list, inspect, delete and re-index the files of a collection."""

from __future__ import annotations

from fastapi import APIRouter, File, Query, Request, Response, UploadFile
from pydantic import BaseModel

from ingest.documents import Document, UploadError
from service.deps import LibraryDep, PrincipalDep, indexer_for

router = APIRouter(prefix="/v1/documents", tags=["documents"])

CollectionQuery = Query(None, description="Collection (default: ARCHIVIST_COLLECTION, 'default').")
MAX_FILES = 50  # per upload request


class DocumentList(BaseModel):
    documents: list[Document]


class UploadReply(DocumentList):
    report: dict


@router.get("", response_model=DocumentList, summary="List a collection's documents")
def list_documents(library: LibraryDep, who: PrincipalDep,
                   collection: str | None = CollectionQuery) -> DocumentList:
    """Every file with its status: indexed, failed (with the reason) or pending (not yet synced)."""
    return DocumentList(documents=indexer_for(library, who, collection, "read").documents())


@router.post("", response_model=UploadReply, status_code=201, summary="Upload documents")
def upload(request: Request, library: LibraryDep, who: PrincipalDep,
           file: list[UploadFile] = File(...), collection: str | None = CollectionQuery) -> UploadReply:
    """Multipart upload, field `file` (repeatable).  Each file is checked (size, type by content,
    a safe name) and indexed at once; one bad file refuses the whole request and stores nothing."""
    indexer = indexer_for(library, who, collection)
    max_mb = indexer.settings.ingest.max_file_mb
    limit = int(max_mb * 1e6)
    declared = int(request.headers.get("content-length") or 0)
    if declared > limit * MAX_FILES or len(file) > MAX_FILES:
        raise UploadError(f"The upload is too large ({declared / 1e6:.0f} MB, {len(file)} files).",
                          status=413, hint=f"Send at most {MAX_FILES} files of up to "
                                           f"{max_mb:.0f} MB each per request.")
    docs, report = indexer.add_documents([(f.filename, f.file) for f in file])
    return UploadReply(documents=docs, report=report.to_dict())


@router.get("/{doc_id}", response_model=Document, summary="One document")
def get_document(doc_id: str, library: LibraryDep, who: PrincipalDep,
                 collection: str | None = CollectionQuery) -> Document:
    return indexer_for(library, who, collection, "read").document(doc_id)


@router.delete("/{doc_id}", status_code=204, summary="Delete a document")
def delete_document(doc_id: str, library: LibraryDep, who: PrincipalDep,
                    collection: str | None = CollectionQuery) -> Response:
    """Removes the file from the collection's folder and its passages from the index."""
    indexer_for(library, who, collection).delete_document(doc_id)
    return Response(status_code=204)


@router.post("/{doc_id}/reindex", response_model=Document, summary="Index a document again")
def reindex(doc_id: str, library: LibraryDep, who: PrincipalDep,
            collection: str | None = CollectionQuery) -> Document:
    """Parses and embeds the file again, even if it is unchanged."""
    return indexer_for(library, who, collection).reindex_document(doc_id)
