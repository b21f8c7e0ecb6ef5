"""OCR of scanned PDF pages and images, with the real recogniser and the real embedder.

The scans are drawn here (tests/scans.py): English and Chinese text, slightly rotated and
speckled, saved as an image-only PDF, a multi-page TIFF and a PNG.  Few small pages: the whole
module reads eight pages in all.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from ingest.ocr import Ocr, reading_order
from ingest.parsers import parse_file, usable_text
from tests.scans import CHINESE_PAGES, ENGLISH_PAGES, FONT, save_pdf, save_png, save_tiff
from tests.workspace import Workspace

pytestmark = pytest.mark.skipif(not FONT.is_file(), reason="needs fonts-wqy-zenhei (make test installs it)")


def write_scans(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    save_pdf(folder / "scan.pdf", [ENGLISH_PAGES[0], CHINESE_PAGES[1]])
    save_tiff(folder / "fax.tif", [ENGLISH_PAGES[1], CHINESE_PAGES[2]])
    save_png(folder / "note.png", CHINESE_PAGES[0], angle=-1.2)
    return folder


@pytest.fixture(scope="module")
def scanned(tmp_path_factory, real_embedder):
    root = tmp_path_factory.mktemp("scanned")
    write_scans(root / "data")
    ws = Workspace.make(root, embedder=real_embedder)
    report = ws.indexer.ingest()
    return ws, report


def test_scans_and_images_are_indexed_page_by_page_with_ocr_marks(scanned):
    ws, report = scanned
    assert report.failed == 0 and report.added == 3 and report.skipped_pages == [], report.failures
    chunks = list(ws.store.iter_chunks())
    assert {c.source for c in chunks} == {"scan.pdf", "fax.tif", "note.png"}
    assert all(c.ocr and 0.8 < c.ocr_confidence <= 1.0 for c in chunks)
    pages = {(c.source, c.page): c.text for c in chunks}
    assert "cooling pump in hall B" in pages["scan.pdf", 1]
    assert "访客管理规定" in pages["scan.pdf", 2]
    assert "red badge" in pages["fax.tif", 1] and "食堂" in pages["fax.tif", 2]
    assert "冷却水泵" in pages["note.png", None]  # a single image has no page number
    # Reading order: one line per printed line, title first (compared without spaces: the
    # recogniser sometimes drops one between English words).
    lines = [line.replace(" ", "") for line in pages["scan.pdf", 1].splitlines()]
    assert lines[:2] == ["Quarterlymaintenancereport", "ThecoolingpumpinhallBwasreplacedon12March."]
    # The lexical index (where search results come from) keeps the marks too.
    lexical = ws.lexical.chunks([c.chunk_id for c in chunks])
    assert all(chunk.ocr_confidence == pytest.approx(c.ocr_confidence) for c in chunks
               for chunk, _ in [lexical[c.chunk_id]])


@pytest.mark.parametrize("question, source, page", [
    ("When was the cooling pump replaced?", "scan.pdf", 1),
    ("What colour badge must visitors wear?", "fax.tif", 1),
    ("访客必须佩戴什么颜色的胸卡？", "scan.pdf", 2),
    ("食堂几点开门？", "fax.tif", 2),
    ("冷却水泵什么时候更换的？", "note.png", None),
])
def test_a_question_finds_the_scanned_page_in_either_language(scanned, question, source, page):
    ws, _ = scanned
    best = ws.assistant.search(question, top_k=3)[0]
    assert (best.source, best.page) == (source, page)
    assert best.ocr is True and 0.8 < best.ocr_confidence <= 1.0
    dumped = best.model_dump()  # what `archivist search --json` and citations carry
    assert dumped["ocr"] is True and dumped["ocr_confidence"] == best.ocr_confidence


def test_unchanged_scans_are_not_read_again(scanned, monkeypatch):
    ws, _ = scanned
    monkeypatch.setattr(Ocr, "read", lambda *a: pytest.fail("OCR ran on an unchanged file"))
    report = ws.indexer.ingest()
    assert (report.unchanged, report.added, report.updated, report.chunks_embedded) == (3, 0, 0, 0)


def test_the_page_limit_skips_pages_and_says_so(tmp_path, real_embedder):
    (tmp_path / "data").mkdir()
    save_pdf(tmp_path / "data" / "long.pdf", [ENGLISH_PAGES[0], ENGLISH_PAGES[2]])
    ws = Workspace.make(tmp_path, embedder=real_embedder, ocr_max_pages=1)
    report = ws.indexer.ingest()
    assert report.added == 1 and report.failed == 0
    [skipped] = report.skipped_pages
    assert skipped.source == "long.pdf" and "page 2" in skipped.reason
    assert "ARCHIVIST_OCR_MAX_PAGES" in skipped.reason
    assert "skipped pages: long.pdf" in report.summary()
    assert {c.page for c in ws.store.iter_chunks()} == {1}


def test_the_time_limit_skips_pages_not_started(tmp_path):
    path = save_pdf(tmp_path / "slow.pdf", [ENGLISH_PAGES[0], ENGLISH_PAGES[1], ENGLISH_PAGES[2]])
    ocr = Ocr(max_pages=10, timeout_s=1e-6, workers=1)
    try:
        result = ocr.read(path, [0, 1, 2])
    finally:
        ocr.close()
    assert len(result.pages) < 3
    assert any("ARCHIVIST_OCR_TIMEOUT_S" in reason for reason in result.skipped)


def test_ocr_off_reports_images_and_scans_instead_of_reading_them(tmp_path, real_embedder):
    write_scans(tmp_path / "data")
    ws = Workspace.make(tmp_path, embedder=real_embedder, ocr="off")
    report = ws.indexer.ingest()
    reasons = {f.source: f.reason for f in report.failures}
    assert report.failed == 3 and ws.store.count() == 0
    assert "OCR" in reasons["note.png"] and "ARCHIVIST_OCR=off" in reasons["scan.pdf"]


def test_a_pdf_with_a_text_layer_is_ocred_only_on_its_scanned_pages(tmp_path):
    from fpdf import FPDF

    from tests.scans import draw_page

    draw_page(CHINESE_PAGES[2]).save(tmp_path / "page.png")
    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("helvetica", size=12)
    pdf.multi_cell(0, 8, "Safety briefing. Hard hats are required on the loading dock at all times.")
    pdf.add_page()
    pdf.image(str(tmp_path / "page.png"), x=0, y=0, w=210)
    pdf.output(str(tmp_path / "mixed.pdf"))
    ocr = Ocr(max_pages=10, timeout_s=120, workers=1)
    try:
        doc = parse_file(tmp_path / "mixed.pdf", ocr)
    finally:
        ocr.close()
    first, second = doc.sections
    assert first.page == 1 and first.ocr_confidence is None and "Hard hats" in doc.text[first.start:first.end]
    assert second.page == 2 and second.ocr_confidence > 0.8 and "食堂" in doc.text[second.start:second.end]


def test_garbage_text_layers_are_not_usable():
    assert usable_text("The cooling pump in hall B was replaced on 12 March.")
    assert usable_text("二号车间的冷却水泵已于三月更换，维修后振动值保持在正常范围内。")
    assert not usable_text("  3  ")  # a page number over a scan
    assert not usable_text("\ue000\ue001\ue002\ufffd\x07" * 10)  # a font without a usable encoding
    assert not usable_text("(cid:12)(cid:45)(cid:77)(cid:3)(cid:9)(cid:81)")


def test_reading_order_joins_boxes_of_a_line_and_sorts_lines():
    def box(x, y, w=100, h=20, tilt=0):
        return [[x, y], [x + w, y + tilt], [x + w, y + h + tilt], [x, y + h]]

    boxes = [(box(300, 104, tilt=3), "world"), (box(100, 200), "second"), (box(100, 100), "hello"),
             (box(300, 200), "二行"), (box(200, 201), "第")]
    assert reading_order(boxes) == ["hello world", "second 第二行"]


def test_uploaded_images_are_recognised_by_their_content(tmp_path):
    from PIL import Image

    from ingest.sniff import matches, sniff

    image = Image.new("L", (8, 8), 255)
    for name, fmt, ext in (("a.png", "PNG", ".png"), ("b.jpeg", "JPEG", ".jpg"), ("c.tiff", "TIFF", ".tif")):
        image.save(tmp_path / name, fmt)
        assert sniff(tmp_path / name) == ext and matches(Path(name).suffix, ext)
    assert not matches(".png", ".jpg") and not matches(".pdf", ".png")


def test_a_page_still_being_read_past_the_time_limit_is_given_up_and_the_pool_restarts(tmp_path):
    path = save_pdf(tmp_path / "stuck.pdf", [ENGLISH_PAGES[0], CHINESE_PAGES[0]])
    ocr = Ocr(max_pages=10, timeout_s=0.01, workers=1, grace_s=0.0)
    try:
        result = ocr.read(path, [0, 1])
        assert result.pages == {} and "2 page(s) not OCRed (pages 1-2)" in result.skipped[0]
        ocr.timeout_s, ocr.grace_s = 120, 30
        assert "冷却水泵" in ocr.read(path, [1]).pages[2].text  # a fresh pool reads again
    finally:
        ocr.close()


def test_a_lexical_index_from_before_ocr_gains_the_column_and_reads_as_not_ocred(tmp_path):
    import sqlite3

    from rag.core.shapes import Chunk
    from rag.storage.lexical_sqlite import SqliteLexicalIndex

    old = sqlite3.connect(tmp_path / "lexical.sqlite3")
    old.executescript(
        "CREATE TABLE chunks (id INTEGER PRIMARY KEY, chunk_id TEXT UNIQUE NOT NULL, source TEXT NOT NULL,"
        " ordinal INTEGER NOT NULL, start INTEGER NOT NULL, \"end\" INTEGER NOT NULL, page INTEGER,"
        " heading TEXT, content_hash TEXT NOT NULL, file_hash TEXT NOT NULL, text TEXT NOT NULL,"
        " head_terms TEXT NOT NULL, terms TEXT NOT NULL);"
        "INSERT INTO chunks VALUES (1, 'c1', 'a.txt', 0, 0, 5, NULL, NULL, 'h', 'f', 'hello', '', 'hello');")
    old.close()
    index = SqliteLexicalIndex(tmp_path / "lexical.sqlite3")
    try:
        [(chunk, _)] = index.chunks(["c1"]).values()
        assert chunk.text == "hello" and chunk.ocr_confidence is None and not chunk.ocr
        scanned = Chunk("c2", "b.png", "scan", 0, 4, None, None, "h2", 0, "f2", ocr_confidence=0.93)
        index.replace_source("b.png", [scanned])
        [(chunk, _)] = index.chunks(["c2"]).values()
        assert chunk.ocr and chunk.ocr_confidence == 0.93
    finally:
        index.close()


def test_a_short_text_layer_is_kept_when_the_page_is_not_ocred(tmp_path):
    from fpdf import FPDF

    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("helvetica", size=24)
    pdf.cell(0, 20, "Annual Report")  # a title page: too little text to trust, but real
    pdf.output(str(tmp_path / "title.pdf"))
    doc = parse_file(tmp_path / "title.pdf", None)
    assert doc.text == "Annual Report" and doc.sections[0].ocr_confidence is None
    assert "not OCRed (ARCHIVIST_OCR=off)" in doc.skipped[0]


def test_a_photo_stored_sideways_is_turned_upright_by_its_exif_orientation(tmp_path):
    from PIL import Image

    from ingest.ocr import load_page_image
    from tests.scans import draw_page

    page = draw_page(ENGLISH_PAGES[0], angle=0)
    sideways = page.rotate(90, expand=True)  # as a camera held sideways stores it
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to view"
    sideways.convert("RGB").save(tmp_path / "photo.jpg", exif=exif)
    upright = load_page_image(tmp_path / "photo.jpg", 0)
    assert upright.size == page.size
