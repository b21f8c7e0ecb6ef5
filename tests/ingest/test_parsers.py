from pathlib import Path

import pytest

from ingest.parsers import is_heading, parse_file, parse_text_like
from rag.core.errors import ParseError


def sections(path: Path):
    doc = parse_file(path)
    return doc, [(s.page, s.heading, doc.text[s.start:s.end]) for s in doc.sections]


def test_pdf_pages_and_outline_headings(corpus):
    doc, secs = sections(corpus / "reports" / "turbine.pdf")
    assert [(p, h) for p, h, _ in secs] == [(1, "Overview"), (2, "Performance"), (3, "Safety")]
    assert "4.2 megawatts" in secs[1][2]


def test_pptx_slides_are_pages(corpus):
    _, secs = sections(corpus / "deck.pptx")
    assert [(p, h) for p, h, _ in secs] == [(1, "Quarterly review"), (2, "Second quarter results")]
    assert "Nordic region" in secs[1][2]


def test_xlsx_sheets_are_pages_with_rows_as_lines(corpus):
    _, secs = sections(corpus / "budget.xlsx")
    assert [(p, h) for p, h, _ in secs] == [(1, "Staff"), (2, "Hardware")]
    assert "Item: Server hardware; Budget (EUR): 84000" in secs[1][2]


def test_csv_rows_name_their_columns(corpus):
    doc, _ = sections(corpus / "inventory.csv")
    assert "product: Falcon drill; warehouse: Lyon; units: 140" in doc.text


@pytest.mark.parametrize("name, heading, fact", [
    ("specs.docx", "Capacity", "18 tonnes"),
    ("handbook.md", "Leave", "25 days"),
    ("guide.html", "Metrics exporter", "port 9187"),
    ("legacy/gbk.txt", "年假制度", "十五天"),
    ("legacy/big5.txt", "報銷規定", "三十日"),
    ("legacy/utf16.txt", "Parking", "blue zone"),
])
def test_nearest_heading_is_kept(corpus, name, heading, fact):
    _, secs = sections(corpus / name)
    assert any(h == heading and fact in text for _, h, text in secs), secs


def test_sections_cover_the_text_in_order(corpus):
    doc, _ = sections(corpus / "handbook.md")
    starts = [s.start for s in doc.sections]
    assert starts == sorted(starts) and doc.sections[0].start == 0
    assert doc.sections[-1].end == len(doc.text)


def test_unstructured_classification_uses_the_offline_pipeline():
    from unstructured.nlp import tokenize

    parse_text_like(b"Safety\n\nDo not touch the blades. Wear gloves at all times.", "text")
    assert tokenize._get_nlp().meta["lang"] == "xx"  # never en_core_web_sm, which is downloaded


@pytest.mark.parametrize("text, expected", [
    ("Installation", True), ("第一章 总则", True),
    ("The warranty lasts two years.", False), ("本公司员工每年享有十五天带薪年假。", False),
    ("x" * 200, False),
])
def test_is_heading(text, expected):
    assert is_heading(text) is expected


def test_unsupported_and_broken_files_raise_parse_errors(tmp_path):
    (tmp_path / "a.zip").write_bytes(b"PK\x03\x04")
    (tmp_path / "broken.pdf").write_bytes(b"%PDF-1.4\n garbage")
    (tmp_path / "broken.docx").write_bytes(b"not a zip")
    for name in ("a.zip", "broken.pdf", "broken.docx"):
        with pytest.raises(ParseError):
            parse_file(tmp_path / name)
