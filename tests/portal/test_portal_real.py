"""The whole portal in headless Chromium with the real models: upload a PDF on the library page,
wait until it is indexed, ask about it, open a citation and check the highlighted sentence.

With PORTAL_SCREENSHOTS=DIR it also saves the pages as PNG there (bench/screenshots.py)."""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import pytest

from service.app import create_app
from tests.workspace import Workspace
from tests.conftest import make_settings
from tests.server import serve

pytestmark = [pytest.mark.slow, pytest.mark.browser]

PAGES = [
    ("Kestrel Point Lighthouse", "Kestrel Point Lighthouse stands on the northern headland of "
     "Gannet Bay. It was built in 1887 and has been automated since 1994. Visitors may climb "
     "the tower on Saturdays between May and September."),
    ("Lamp maintenance", "The keeper cleans the lamp lens every Tuesday with diluted vinegar and "
     "a soft cotton cloth. The replacement bulbs are stored in the green cabinet beside the "
     "generator room. A spare rotating motor is kept in the boathouse."),
]
QUESTION = "How often is the lamp lens of the lighthouse cleaned?"


def write_pdf(path: Path) -> None:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_font("Helvetica", size=12)
    for title, body in PAGES:
        pdf.add_page()
        pdf.cell(text=title, new_x="LMARGIN", new_y="NEXT")
        pdf.multi_cell(0, 8, body)
    pdf.output(str(path))


def squash(text: str) -> str:
    return " ".join(text.split())


@pytest.fixture
def portal(tmp_path, real_embedder, real_generator):
    settings = make_settings(tmp_path)
    settings.data_dir.mkdir(parents=True)
    ws = Workspace.of(settings, embedder=real_embedder, generator=real_generator)
    app = create_app(settings, ws.library)
    with serve(app) as url:
        yield url


def test_upload_a_pdf_then_ask_about_it_and_see_the_quoted_sentence(portal, page, tmp_path):
    shots = os.environ.get("PORTAL_SCREENSHOTS")
    pdf = tmp_path / "kestrel-point.pdf"
    write_pdf(pdf)
    from pypdf import PdfReader

    pdf_text = squash(" ".join(p.extract_text() for p in PdfReader(pdf).pages))

    page.goto(f"{portal}/library")
    page.get_by_label("Drop files here, or choose them:").set_input_files(str(pdf))
    row = page.locator("#documents tbody tr", has_text="kestrel-point.pdf")
    row.and_(page.locator("[data-status=indexed]")).wait_for(timeout=120_000)
    assert int(row.locator("td.num").first.inner_text()) >= 1  # chunks
    assert "KB" in row.inner_text() or " B" in row.inner_text()  # size
    if shots:
        page.screenshot(path=f"{shots}/portal-library.png", full_page=True)

    page.get_by_role("link", name="Ask").click()
    page.get_by_label("Question").fill(QUESTION)
    started = time.perf_counter()
    page.keyboard.press("Enter")
    turn = page.locator(".turn").last
    error = page.locator("#ask-error")
    turn.locator(".answer[aria-busy=false]").or_(page.locator("#ask-error:not([hidden])")).wait_for(
        timeout=300_000)
    assert error.is_hidden(), error.inner_text()
    seconds = time.perf_counter() - started
    print(f"\nportal ask took {seconds:.1f} s in the browser")

    assert "refused" not in (turn.get_attribute("class") or ""), turn.inner_text()
    assert turn.locator(".answer-text").inner_text().strip()
    chip = turn.locator(".chip").first
    assert re.fullmatch(r"\[1\] kestrel-point\.pdf p\.\d", chip.inner_text().strip())
    chip.click()
    panel = page.locator("#passage")
    assert panel.is_visible()
    meta = panel.locator("#passage-meta").inner_text()
    assert re.search(r"Page [12]\b", meta), meta
    mark = panel.locator("mark")
    assert mark.count() == 1
    marked = squash(mark.inner_text())
    assert len(marked) > 10 and marked in pdf_text, (marked, pdf_text)
    if shots:
        page.screenshot(path=f"{shots}/portal-ask.png", full_page=True)
