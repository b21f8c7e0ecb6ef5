"""Documents of a collection as the API and the portal see them, and safe storage of uploads.

A document is a file in the collection's folder.  Its id is derived from its path, so it is
stable across restarts and replicas.  Its status comes from the manifest (`indexed`, `failed`
with the reason) or, for a file that is on disk but not yet synced, `pending`.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import unicodedata
from pathlib import Path
from typing import BinaryIO, Literal

from pydantic import BaseModel, Field

from ingest.manifest import FileRecord
from ingest.parsers import SUPPORTED
from ingest.sniff import matches, sniff
from rag.core.errors import ArchivistError

_FORBIDDEN = set('<>:"/\\|?*')
_COPY_CHUNK = 1 << 20


class UploadError(ArchivistError):
    """An upload was refused; `status` is the HTTP status that says why."""

    def __init__(self, message: str, hint: str | None = None, status: int = 422) -> None:
        super().__init__(message, hint)
        self.status = status


class Document(BaseModel):
    id: str = Field(description="Stable id derived from the file's path in the collection.")
    collection: str
    source: str = Field(description="Path of the file inside the collection's folder.")
    status: Literal["indexed", "failed", "pending"] = Field(
        description="pending: on disk, not yet ingested (or changed since).")
    error: str | None = Field(None, description="Why the last ingest of this file failed.")
    chunks: int = Field(0, description="Chunks in the index (a failed update keeps the last good version's).")
    size: int = Field(description="Bytes on disk.")
    updated_at: float | None = Field(None, description="When it was last ingested (Unix time).")
    ocr_pages: int = Field(0, description="Pages of it read by OCR (scanned PDF pages, images).")


def document_id(source: str) -> str:
    return hashlib.sha256(source.encode("utf-8", "surrogateescape")).hexdigest()[:16]


def describe(collection: str, source: str, path: Path | None, record: FileRecord | None,
             ocr_pages: int = 0) -> Document:
    """One document from what is on disk (`path`, None when gone) and what the manifest says."""
    stat = path.stat() if path is not None else None
    status = "pending"
    if record is not None and stat is not None and (record.size, record.mtime_ns) == (stat.st_size, stat.st_mtime_ns):
        status = record.status
    return Document(id=document_id(source), collection=collection, source=source, status=status,
                    error=record.error if record and status == "failed" else None,
                    chunks=record.chunks if record else 0,
                    size=stat.st_size if stat else (record.size if record else 0),
                    updated_at=record.updated_at if record else None, ocr_pages=ocr_pages)


def safe_name(filename: str | None) -> str:
    """The client's file name reduced to one harmless path component: no folders, no `..`, no
    hidden files, no control or reserved characters; Unicode kept (NFC)."""
    name = unicodedata.normalize("NFC", filename or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if ch.isprintable() and ch not in _FORBIDDEN).strip()
    name = name.lstrip(". ")
    stem, dot, ext = name.rpartition(".")
    if len(name.encode()) > 200:  # most file systems allow 255 bytes
        stem = stem.encode()[:150].decode(errors="ignore") if dot else ""
        name = f"{stem}.{ext}" if dot else name.encode()[:150].decode(errors="ignore")
    if not name:
        raise UploadError(f"The file name {filename!r} has nothing usable in it.",
                          hint="Rename the file, e.g. report.pdf, and upload it again.")
    return name


def store_upload(folder: Path, filename: str | None, stream: BinaryIO, max_bytes: int) -> str:
    """Write an upload into the collection's folder; returns its name there.

    The bytes go to a hidden temporary file first (ingest skips hidden files), are checked for
    size and type, and are renamed into place only when they pass: a refused or interrupted
    upload leaves nothing behind, and an existing file of that name is replaced atomically.
    """
    name = safe_name(filename)
    folder.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".upload-", dir=folder)
    try:
        size = 0
        with os.fdopen(fd, "wb") as out:
            while block := stream.read(_COPY_CHUNK):
                size += len(block)
                if size > max_bytes:
                    raise UploadError(
                        f"{name} is over the {max_bytes / 1e6:.0f} MB limit.", status=413,
                        hint="Split the file, or raise ARCHIVIST_MAX_FILE_MB on the server.")
                out.write(block)
        if size == 0:
            raise UploadError(f"{name} is empty.", hint="Check the file and upload it again.")
        name = _checked_type(name, sniff(Path(tmp)))
        os.replace(tmp, folder / name)
        return name
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _checked_type(name: str, sniffed: str | None) -> str:
    supported = ", ".join(sorted(SUPPORTED))
    if sniffed is None:
        raise UploadError(f"{name} is not a format Archivist can read.", status=415,
                          hint=f"Supported: {supported}.")
    ext = os.path.splitext(name)[1].lower()
    if ext not in SUPPORTED:  # no or unknown extension: name it for what it is
        return name + sniffed
    if not matches(ext, sniffed):
        raise UploadError(f"{name} is named {ext} but its content is {sniffed.lstrip('.')}.",
                          status=415, hint=f"Rename it to end in {sniffed}, or upload the real {ext} file.")
    return name
