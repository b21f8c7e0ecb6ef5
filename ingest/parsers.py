"""Files to text with structure: each format becomes one extracted text cut into sections.

A section is a stretch of the extracted text with one page (PDF page, slide or sheet) and one
nearest heading.  Chunks never cross a section boundary, so every chunk has exactly one page and
one heading.  Word, PowerPoint, HTML, Markdown and plain text go through unstructured; PDFs through pypdf
(unstructured's PDF path imports unstructured-inference and a CUDA torch); CSV and Excel through
the csv module and openpyxl.  Every table (CSV, Excel, the tables of Word and HTML files, and those
laid out in columns in a PDF's text) becomes one "column: value; ..." line per row
(ingest/tables.py), which retrieves far better than unstructured's flattened table text.  Images and PDF pages without a usable text layer are read
by OCR (ingest/ocr.py).
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable

from ingest.decode import decode_text
from ingest.tables import cell_text, html_table, layout_tables, row_lines
from rag.core.errors import ParseError
from rag.language.text import HAN_KANA, HANGUL

if TYPE_CHECKING:
    from ingest.ocr import Ocr

SEPARATOR = "\n\n"
_SENTENCE_END = tuple(".。!！?？;；,，:：")
_CJK = re.compile(f"[{HAN_KANA}{HANGUL}]")


@dataclass(frozen=True)
class Section:
    start: int
    end: int
    page: int | None
    heading: str | None
    ocr_confidence: float | None = None  # mean recogniser score when the text was OCRed
    table: bool = False  # rows of a table, one paragraph each: chunks start at a row


@dataclass
class ParsedDocument:
    """Extracted text and its sections, built incrementally by `add`."""

    text: str = ""
    sections: list[Section] = field(default_factory=list)
    # Parts of the file left out, said for the ingest report ("3 pages not OCRed: ...").
    skipped: list[str] = field(default_factory=list)
    _parts: list[str] = field(default_factory=list, repr=False)
    _length: int = 0
    _bare_heading: bool = False  # the last section holds nothing but its heading

    def add(self, text: str, page: int | None, heading: str | None,
            ocr_confidence: float | None = None, table: bool = False) -> None:
        text = text.strip()
        if not text:
            return
        if self._parts:
            self._parts.append(SEPARATOR)
            self._length += len(SEPARATOR)
        start = self._length
        self._parts.append(text)
        self._length += len(text)
        last = self.sections[-1] if self.sections else None
        kind = (page, heading, ocr_confidence, table)
        if last and (last.page, last.heading, last.ocr_confidence, last.table) == kind:
            self.sections[-1] = Section(last.start, self._length, page, heading, ocr_confidence, table)
            self._bare_heading = False
            return
        if last and last.page == page and self._bare_heading and ocr_confidence is None and not table:
            # A heading directly followed by a sub-heading: keep it with the sub-section's text
            # rather than as a chunk of its own.
            start = self.sections.pop().start
        self.sections.append(Section(start, self._length, page, heading, ocr_confidence, table))
        self._bare_heading = text == heading

    def finish(self) -> ParsedDocument:
        self.text = "".join(self._parts)
        return self


def is_heading(text: str) -> bool:
    """Accept a title only if it is shaped like one: short and not ending like a sentence."""
    text = text.strip()
    return 0 < len(text) <= 120 and "\n" not in text and not text.endswith(_SENTENCE_END)


def detect_languages(sample: str) -> list[str]:
    """ISO 639-3 hint for unstructured: Chinese when CJK characters dominate, else English."""
    letters = [ch for ch in sample[:5000] if ch.isalpha()]
    if letters and sum(1 for ch in letters if _CJK.match(ch)) / len(letters) > 0.3:
        return ["zho"]
    return ["eng"]


# --- unstructured-based formats ---------------------------------------------------------------

def _from_elements(elements: Iterable, *, use_pages: bool) -> ParsedDocument:
    doc = ParsedDocument()
    heading: str | None = None
    for el in elements:
        category = getattr(el, "category", "")
        if category in ("PageBreak", "Header", "Footer", "Image"):
            continue
        text = (el.text or "").strip()
        if not text:
            continue
        page = el.metadata.page_number if use_pages else None
        if category == "Title" and is_heading(text):
            heading = text
        html = getattr(el.metadata, "text_as_html", None) if category == "Table" else None
        if html:
            # Rows keep their column names; the caption joins the heading, so every chunk of
            # the table says which table it is from.
            caption, rows = html_table(html)
            _add_rows(doc, rows, page, " / ".join(h for h in (heading, caption) if h) or None)
            continue
        doc.add(text, page, heading)
    return doc.finish()


def _partition(kind: str) -> Callable:
    from ingest.nlp import use_offline_pipeline

    use_offline_pipeline()
    if kind == "html":
        from unstructured.partition.html import partition_html as fn
    elif kind == "md":
        from unstructured.partition.md import partition_md as fn
    elif kind == "text":
        from unstructured.partition.text import partition_text as fn
    elif kind == "docx":
        from unstructured.partition.docx import partition_docx as fn
    elif kind == "pptx":
        from unstructured.partition.pptx import partition_pptx as fn
    else:  # pragma: no cover - programming error
        raise ValueError(kind)
    return fn


def parse_text_like(data: bytes, kind: str) -> ParsedDocument:
    text, _ = decode_text(data)
    if not text.strip():
        return ParsedDocument().finish()
    partition = _partition(kind)
    return _from_elements(partition(text=text, languages=detect_languages(text)), use_pages=False)


# Office files are ZIP archives.  A "zip bomb" declares (and inflates to) gigabytes from a few
# hundred kilobytes; python-docx and friends would read it all into memory.  The declared sizes
# are checked before any library opens the file, and they can be trusted: Python's zipfile stops
# at a member's declared size and fails its CRC check rather than inflate past it.
MAX_UNZIPPED_BYTES = 1 << 30
MAX_ZIP_RATIO = 100  # text XML compresses about 10:1; images not at all
_RATIO_FLOOR = 20 << 20  # small archives may compress as well as they like


def check_zip(path: Path, kind: str) -> None:
    """Raise ParseError for a file that is not a ZIP archive or would inflate absurdly."""
    import zipfile

    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, EOFError, ValueError) as exc:  # ValueError: negative header fields
        raise ParseError(f"the file is not a valid {kind.upper()} (not a ZIP archive: {exc})",
                         hint="It may be damaged or have the wrong extension; re-save it from its application.") from exc
    unzipped = sum(m.file_size for m in members)
    packed = sum(m.compress_size for m in members) or 1
    if unzipped > MAX_UNZIPPED_BYTES or (unzipped > _RATIO_FLOOR and unzipped / packed > MAX_ZIP_RATIO):
        raise ParseError(
            f"refused as a possible zip bomb: {packed / 1e6:.1f} MB would inflate to "
            f"{unzipped / 1e6:.0f} MB ({unzipped / packed:.0f}:1)",
            hint="If the document is genuine, save it again without embedded padding or "
                 "split it into smaller files.")


def parse_docx(path: Path) -> ParsedDocument:
    return _from_elements(_partition("docx")(filename=str(path), languages=["auto"]), use_pages=False)


def parse_pptx(path: Path) -> ParsedDocument:
    return _from_elements(_partition("pptx")(filename=str(path), languages=["auto"]), use_pages=True)


# --- formats read without unstructured --------------------------------------------------------

def _add_rows(doc: ParsedDocument, rows: list[list[str]], page: int | None,
              heading: str | None) -> None:
    """A table as one "column: value; ..." line per row (ingest/tables.py), each its own
    paragraph, so that chunks break between rows rather than inside a cell."""
    for line in row_lines(rows):
        doc.add(line, page, heading, table=True)


def parse_csv(data: bytes) -> ParsedDocument:
    text, _ = decode_text(data)
    try:
        dialect = csv.Sniffer().sniff(text[:4096], delimiters=",;\t|")
    except csv.Error:
        dialect = csv.excel
    doc = ParsedDocument()
    _add_rows(doc, list(csv.reader(io.StringIO(text), dialect)), None, None)
    return doc.finish()


def parse_xlsx(path: Path) -> ParsedDocument:
    """Each sheet is a page, headed by its name; rows as in CSV."""
    from openpyxl import load_workbook

    book = load_workbook(str(path), read_only=True, data_only=True)
    doc = ParsedDocument()
    try:
        for number, sheet in enumerate(book.worksheets, start=1):
            rows = [[cell_text(v) for v in row] for row in sheet.iter_rows(values_only=True)]
            _add_rows(doc, rows, number, sheet.title)
    finally:
        book.close()
    return doc.finish()


def parse_pdf(path: Path, ocr: Ocr | None = None) -> ParsedDocument:
    """Each page's text layer; a page without a usable one (a scan) is OCRed when `ocr` is given."""
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(str(path))
        if reader.is_encrypted and not reader.decrypt(""):
            raise ParseError("the PDF is encrypted with a password",
                             hint="Save an unencrypted copy and ingest that.")
        headings = _pdf_outline_headings(reader)
        texts = [page.extract_text() or "" for page in reader.pages]
        layouts = [_layout_text(page) if usable_text(text) else "" for page, text in zip(reader.pages, texts)]
    except ParseError:
        raise
    except (PdfReadError, ValueError, KeyError, TypeError) as exc:
        raise ParseError(f"the PDF is damaged or unreadable ({exc})",
                         hint="Open and re-save it with a PDF tool, then ingest again.") from exc
    scanned = [i for i, text in enumerate(texts) if not usable_text(text)]
    doc = ParsedDocument()
    read = ocr.read(path, scanned) if ocr and scanned else None
    if read:
        doc.skipped.extend(read.skipped)
    elif scanned:
        doc.skipped.append(f"{len(scanned)} page(s) without a text layer not OCRed (ARCHIVIST_OCR=off)")
    heading: str | None = None
    for index, text in enumerate(texts):
        number = index + 1
        heading = headings.get(number, heading)
        scan = read.pages.get(number) if read else None
        if scan is not None and scan.text.strip():
            doc.add(scan.text, number, heading, scan.confidence)
        elif index not in scanned:
            _add_pdf_page(doc, text, layouts[index], number, heading)
        else:  # not OCRed (off, over a limit) or nothing read: the little text layer there is
            doc.add(text, number, heading)
    return doc.finish()


def _layout_text(page) -> str:
    """The page's text laid out in columns as printed, where tables show as aligned cells."""
    try:
        return page.extract_text(extraction_mode="layout") or ""
    except Exception:  # the layout mode is stricter about odd fonts: go without tables
        return ""


_CAPTION = re.compile(r"^(Table|Tab\.|表)\s*\S", re.IGNORECASE)


def _add_pdf_page(doc: ParsedDocument, text: str, layout: str, page: int, heading: str | None) -> None:
    """A text page; the tables found in its layout replace their flattened lines, as rows that
    name their columns, headed by the caption line just above them when there is one."""
    tables = layout_tables(layout)
    if not tables:
        doc.add(text, page, heading)
        return
    lines = text.splitlines()
    squeezed = [" ".join(line.split()) for line in lines]
    cursor = 0
    for table in tables:
        n = len(table.plain_lines)
        at = next((i for i in range(cursor, len(lines) - n + 1)
                   if squeezed[i:i + n] == table.plain_lines), None)
        if at is None:  # the two extractions disagree: keep the text, add the rows after it
            _add_rows(doc, table.rows, page, heading)
            continue
        doc.add("\n".join(lines[cursor:at]), page, heading)
        caption = squeezed[at - 1] if at > cursor and _CAPTION.match(squeezed[at - 1]) else None
        _add_rows(doc, table.rows, page, " / ".join(h for h in (heading, caption) if h) or None)
        cursor = at + n
    doc.add("\n".join(lines[cursor:]), page, heading)


# Characters a real text layer is made of; a broken font encoding yields mostly others
# (private-use glyphs, control characters, U+FFFD, stray symbols).
_PLAIN = re.compile(rf"[\w\s{HAN_KANA}{HANGUL}.,;:!?'\"()\[\]/%&+\-–—。，、；：！？（）“”‘’]")
MIN_PAGE_CHARS = 20  # fewer non-space characters: a scan's stray text layer (page numbers, a stamp)


def usable_text(text: str) -> bool:
    """Whether a PDF page's text layer is worth keeping rather than OCRing the page."""
    chars = [ch for ch in text if not ch.isspace()]
    if len(chars) < MIN_PAGE_CHARS:
        return False
    plain = sum(1 for ch in chars if _PLAIN.match(ch))
    return plain / len(chars) >= 0.8 and "(cid:" not in text


def parse_image(path: Path, ocr: Ocr | None) -> ParsedDocument:
    """A picture of text: every frame (page of a multi-page TIFF) OCRed, numbered as a page."""
    from ingest.ocr import frame_count

    if ocr is None:
        raise ParseError("images are read by OCR, which is off (ARCHIVIST_OCR=off)",
                         hint="Set ARCHIVIST_OCR=auto to index images.")
    try:
        frames = frame_count(path)
    except Exception as exc:
        raise ParseError(f"the image is damaged or unreadable ({type(exc).__name__}: {exc})",
                         hint="Open and re-save it with an image tool, then ingest again.") from exc
    read = ocr.read(path, list(range(frames)))
    doc = ParsedDocument(skipped=list(read.skipped))
    for number in sorted(read.pages):
        page = read.pages[number]
        doc.add(page.text, number if frames > 1 else None, None, page.confidence)
    return doc.finish()


def _pdf_outline_headings(reader) -> dict[int, str]:
    """1-based page -> last outline (bookmark) title that starts on it."""
    found: dict[int, str] = {}

    def walk(items) -> None:
        for item in items:
            if isinstance(item, list):
                walk(item)
                continue
            try:
                page = reader.get_destination_page_number(item)
            except Exception:  # broken outline entries are common; skip them
                continue
            if page is not None and page >= 0 and item.title:
                found[page + 1] = str(item.title).strip()

    try:
        walk(reader.outline)
    except Exception:
        return {}
    return found


# --- dispatch ---------------------------------------------------------------------------------

SUPPORTED = {
    ".txt": "text", ".text": "text", ".md": "md", ".markdown": "md", ".htm": "html",
    ".html": "html", ".pdf": "pdf", ".docx": "docx", ".pptx": "pptx", ".xlsx": "xlsx",
    ".csv": "csv", ".png": "image", ".jpg": "image", ".jpeg": "image", ".tif": "image",
    ".tiff": "image",
}


def parse_file(path: Path, ocr: Ocr | None = None) -> ParsedDocument:
    """Extract a file's text and sections; ParseError with a reason when that is impossible.
    `ocr` reads images and scanned PDF pages (None: OCR is off)."""
    kind = SUPPORTED.get(path.suffix.lower())
    if kind is None:
        raise ParseError(f"unsupported file type {path.suffix or '(none)'!r}",
                         hint=f"Supported: {', '.join(sorted(SUPPORTED))}.")
    try:
        if kind in ("text", "md", "html"):
            return parse_text_like(path.read_bytes(), kind)
        if kind == "csv":
            return parse_csv(path.read_bytes())
        if kind == "pdf":
            return parse_pdf(path, ocr)
        if kind == "image":
            return parse_image(path, ocr)
        check_zip(path, kind)
        return {"docx": parse_docx, "pptx": parse_pptx, "xlsx": parse_xlsx}[kind](path)
    except ParseError:
        raise
    except Exception as exc:  # a parser library failed on this file: report it, keep going
        raise ParseError(f"could not parse {kind.upper()} ({type(exc).__name__}: {exc})",
                         hint="Check that the file opens in its usual application.") from exc
