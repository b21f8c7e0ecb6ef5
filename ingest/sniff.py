"""What a file really is, from its first bytes: an upload named report.pdf must be a PDF.

Only the formats ingest can parse are recognised.  Office formats are ZIP files told apart by
the part they must contain; text is anything that decodes (see ingest.decode) without control
characters.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

from ingest.decode import decode_text
from rag.core.errors import ParseError

_TEXT_TYPES = {".txt", ".text", ".md", ".markdown", ".csv", ".htm", ".html"}
_IMAGE_MAGIC = {b"\x89PNG\r\n\x1a\n": ".png", b"\xff\xd8\xff": ".jpg", b"II*\x00": ".tif",
                b"MM\x00*": ".tif"}
# Extensions that name the same format as the sniffed one.
_SAME_FORMAT = {".jpeg": ".jpg", ".tiff": ".tif"}
_OFFICE_PARTS = {".docx": "word/document.xml", ".pptx": "ppt/presentation.xml",
                 ".xlsx": "xl/workbook.xml"}


def sniff(path: Path) -> str | None:
    """The extension the content calls for ('.pdf', '.docx', '.txt', '.html', ...), or None when
    it is none of the supported formats."""
    with path.open("rb") as f:
        head = f.read(8192)
    if head.startswith(b"%PDF-"):
        return ".pdf"
    for magic, ext in _IMAGE_MAGIC.items():
        if head.startswith(magic):
            return ext
    if head.startswith(b"PK\x03\x04"):
        try:
            with zipfile.ZipFile(path) as archive:
                parts = set(archive.namelist())
        except (zipfile.BadZipFile, OSError):
            return None
        return next((ext for ext, part in _OFFICE_PARTS.items() if part in parts), None)
    try:
        text, _ = decode_text(head if len(head) < 8192 else _cut_at_line(head))
    except ParseError:
        return None
    start = text.lstrip()[:200].lower()
    return ".html" if start.startswith(("<!doctype html", "<html")) else ".txt"


def _cut_at_line(head: bytes) -> bytes:
    """A prefix that does not end inside a multi-byte character: up to the last newline."""
    cut = head.rfind(b"\n")
    return head[:cut] if cut > 0 else head


def matches(extension: str, sniffed: str | None) -> bool:
    """Whether a file named with `extension` may hold content sniffed as `sniffed`."""
    if sniffed is None:
        return False
    if sniffed in (".txt", ".html"):  # every text format sniffs as text (HTML only by its start)
        return extension in _TEXT_TYPES
    return _SAME_FORMAT.get(extension, extension) == sniffed
