"""Tables stay tables: every row names its columns, in whichever chunk it lands."""

from __future__ import annotations

import datetime

import pytest

from ingest.chunking import Chunker
from ingest.parsers import parse_file
from ingest.tables import cell_text, html_table, row_lines
from tests.workspace import Workspace

STAFF = [["Name", "Department", "Room", "备注"]] + [
    [f"Employee {i}", "Maintenance" if i % 2 else "维修部", str(100 + i), f"负责{i}号车间的冷却水泵巡检工作"]
    for i in range(60)]


@pytest.fixture(scope="module")
def chunker(real_embedder):
    return Chunker(real_embedder.count_tokens, real_embedder.max_tokens, chunk_tokens=120,
                   overlap_tokens=40)


def write_docx(path, rows, heading="Staff list"):
    import docx

    document = docx.Document()
    document.add_heading(heading, 1)
    document.add_paragraph("Who sits where, as of March.")
    table = document.add_table(rows=len(rows), cols=len(rows[0]))
    for r, row in enumerate(rows):
        for c, value in enumerate(row):
            table.cell(r, c).text = value
    document.add_paragraph("Rooms change in the summer.")
    document.save(str(path))
    return path


def test_row_lines_find_the_header_below_a_title_and_repeat_it_per_row():
    rows = [["Spare parts 2026", "", ""], ["", "", ""], ["Part", "Price", "Stock"],
            ["Pump seal", "12 EUR", ""], ["Filter", "8 EUR", "40"]]
    assert row_lines(rows) == ["Spare parts 2026", "Part: Pump seal; Price: 12 EUR",
                               "Part: Filter; Price: 8 EUR; Stock: 40"]
    assert row_lines([["a", "b"]]) == ["a, b"]
    assert row_lines([["Name", ""], ["x", "y"]]) == ["Name: x; column 2: y"]


def test_spreadsheet_values_read_as_typed():
    assert [cell_text(v) for v in (12.0, 2.5, None, datetime.datetime(2026, 3, 1), "x")] == \
        ["12", "2.5", "", "2026-03-01", "x"]


def test_html_tables_keep_caption_and_spanned_columns():
    caption, rows = html_table("<table><caption> Table 2:\n parts </caption><tr><th colspan=2>Part"
                               "</th><th>Price</th></tr><tr><td>A</td><td>B<br>C</td><td>1</td></tr></table>")
    assert caption == "Table 2: parts"
    assert rows == [["Part", "Part", "Price"], ["A", "B C", "1"]]


def test_a_long_word_table_is_chunked_between_rows_and_every_value_has_its_column(tmp_path, chunker):
    doc = parse_file(write_docx(tmp_path / "staff.docx", STAFF))
    table = [s for s in doc.sections if s.table]
    assert len(table) == 1 and table[0].heading == "Staff list"
    rows = set(doc.text[table[0].start:table[0].end].split("\n\n"))
    assert "Name: Employee 31; Department: Maintenance; Room: 131; 备注: 负责31号车间的冷却水泵巡检工作" in rows
    chunks = [c for c in chunker.chunk("staff.docx", "h", doc) if c.start >= table[0].start
              and c.end <= table[0].end]
    assert len(chunks) >= 4
    for chunk in chunks:
        lines = chunk.text.split("\n\n")
        # Whole rows only: no chunk starts or ends inside a row, so no Chinese cell is cut.
        assert all(line in rows for line in lines), chunk.text[:80]
        assert all(line.startswith("Name: ") and "备注: 负责" in line for line in lines)
    assert any(a.end > b.start for a, b in zip(chunks, chunks[1:]))  # neighbours still overlap


def test_html_table_chunks_name_the_heading_and_caption(tmp_path):
    (tmp_path / "prices.html").write_text(
        "<html><body><h1>Price list</h1><p>Valid in 2026.</p><table><caption>Spare parts</caption>"
        "<tr><th>Part</th><th>Price</th><th>备注</th></tr>"
        "<tr><td>Pump seal</td><td>12 EUR</td><td>冷却水泵密封圈</td></tr>"
        "<tr><td>Air filter</td><td>8 EUR</td><td>空气过滤器</td></tr></table>"
        "<p>Prices include tax.</p></body></html>", encoding="utf-8")
    doc = parse_file(tmp_path / "prices.html")
    [table] = [s for s in doc.sections if s.table]
    assert table.heading == "Price list / Spare parts"
    assert doc.text[table.start:table.end] == ("Part: Pump seal; Price: 12 EUR; 备注: 冷却水泵密封圈\n\n"
                                                "Part: Air filter; Price: 8 EUR; 备注: 空气过滤器")
    assert doc.sections[-1].heading == "Price list" and not doc.sections[-1].table


def test_an_excel_sheet_with_a_title_row_names_sheet_and_columns(tmp_path):
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    sheet.title = "Parts"
    sheet.append(["Spare parts price list"])
    sheet.append([])
    sheet.append(["Part", "Price", "Since"])
    sheet.append(["Pump seal", 12.0, datetime.datetime(2026, 3, 1)])
    book.save(tmp_path / "parts.xlsx")
    doc = parse_file(tmp_path / "parts.xlsx")
    assert doc.text == "Spare parts price list\n\nPart: Pump seal; Price: 12; Since: 2026-03-01"
    assert {(s.page, s.heading) for s in doc.sections} == {(1, "Parts")}


def test_a_question_about_a_middle_row_finds_it_with_its_column_names(tmp_path, real_embedder):
    (tmp_path / "data").mkdir()
    write_docx(tmp_path / "data" / "staff.docx", STAFF)
    ws = Workspace.make(tmp_path, embedder=real_embedder)
    assert ws.indexer.ingest().failed == 0
    best = ws.assistant.search("Which room is Employee 37 in?", top_k=3)[0]
    assert "Name: Employee 37; Department: Maintenance; Room: 137" in best.text
    assert best.heading == "Staff list" and best.ocr is False and best.ocr_confidence is None
    best = ws.assistant.search("负责42号车间冷却水泵巡检的是谁？", top_k=3)[0]
    assert "Name: Employee 42; Department: 维修部; Room: 142; 备注: 负责42号车间" in best.text


def test_a_table_in_a_pdf_text_layer_becomes_rows_under_its_caption(tmp_path):
    from fpdf import FPDF

    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("helvetica", size=10)
    line = {"new_x": "LMARGIN", "new_y": "NEXT"}
    pdf.multi_cell(0, 6, "Spare parts kept in the store room for the cooling pumps.", **line)
    pdf.multi_cell(0, 6, "Table 3: Spare parts", **line)
    with pdf.table() as table:
        for cells in [["Part", "Price", "Stock", "Supplier"], ["Pump seal", "12 EUR", "40", "Acme Ltd"],
                      ["Air filter", "8 EUR", "", "Filters and Sons"], ["Bearing 6204", "5 EUR", "120", "SKF"]]:
            row = table.row()
            for cell in cells:
                row.cell(cell)
    pdf.multi_cell(0, 6, "Prices are given without tax and were last checked in March.", **line)
    pdf.add_page()
    pdf.multi_cell(0, 6, "Two words  apart. " * 40, **line)  # prose, however spaced, is not a table
    pdf.output(str(tmp_path / "parts.pdf"))
    doc = parse_file(tmp_path / "parts.pdf")
    [table] = [s for s in doc.sections if s.table]
    assert table.page == 1 and table.heading == "Table 3: Spare parts"
    assert doc.text[table.start:table.end].split("\n\n") == [
        "Part: Pump seal; Price: 12 EUR; Stock: 40; Supplier: Acme Ltd",
        "Part: Air filter; Price: 8 EUR; Supplier: Filters and Sons",
        "Part: Bearing 6204; Price: 5 EUR; Stock: 120; Supplier: SKF"]
    assert "Pump seal 12 EUR" not in doc.text  # the flattened rows are gone
    assert doc.text.startswith("Spare parts kept") and "last checked in March." in doc.text
    assert [s.page for s in doc.sections if not s.table] == [1, 1, 2]


def test_a_powerpoint_table_becomes_rows_on_its_slide_under_the_slide_title(tmp_path):
    from pptx import Presentation
    from pptx.util import Inches

    deck = Presentation()
    deck.slides.add_slide(deck.slide_layouts[5]).shapes.title.text = "Agenda"
    slide = deck.slides.add_slide(deck.slide_layouts[5])
    slide.shapes.title.text = "Fees 2026"
    rows = [["Category", "Annual fee", "Joining fee"], ["Adult", "240 euros", "50 euros"],
            ["家庭会员", "每年三百元", "免收"]]
    table = slide.shapes.add_table(3, 3, Inches(1), Inches(2), Inches(6), Inches(2)).table
    for r, row in enumerate(rows):
        for c, value in enumerate(row):
            table.cell(r, c).text = value
    deck.save(str(tmp_path / "fees.pptx"))

    doc = parse_file(tmp_path / "fees.pptx")
    [section] = [s for s in doc.sections if s.table]
    assert (section.page, section.heading) == (2, "Fees 2026")
    assert doc.text[section.start:section.end] == (
        "Category: Adult; Annual fee: 240 euros; Joining fee: 50 euros\n\n"
        "Category: 家庭会员; Annual fee: 每年三百元; Joining fee: 免收")
