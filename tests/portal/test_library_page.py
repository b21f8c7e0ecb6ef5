"""The library page in a real browser with stand-in models over the real documents API: drop
several files, see their status, a refused upload, re-index, delete, switch collection."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from rag.library import Library
from rag.models.loaded import Models
from service.app import create_app
from tests.conftest import make_settings
from tests.fakes import FakeEmbedder, FakeGenerator
from tests.server import serve
from tests.workspace import Workspace

pytestmark = [pytest.mark.slow, pytest.mark.browser]

DROP = """(files) => {
  const data = new DataTransfer();
  for (const [name, body] of files) data.items.add(new File([body], name));
  const zone = document.getElementById("drop-zone");
  zone.dispatchEvent(new DragEvent("dragover", {dataTransfer: data, bubbles: true, cancelable: true}));
  zone.dispatchEvent(new DragEvent("drop", {dataTransfer: data, bubbles: true, cancelable: true}));
}"""


@pytest.fixture
def server(tmp_path):
    settings = make_settings(tmp_path, min_score=0.1)
    settings.data_dir.mkdir(parents=True)
    library = Library(settings, Models(settings, embedder=FakeEmbedder(), generator=FakeGenerator()))
    library.create("hr")
    (settings.data_dir / "broken.pdf").write_text("this is not a PDF")  # copied in, not uploaded
    Workspace(library).indexer.ingest()
    app = create_app(settings, library=library)
    with serve(app) as url:
        yield url
    library.close()


def rows(page):
    return page.locator("#documents tbody tr")


def test_drop_several_files_then_reindex_and_delete(server, page):
    page.goto(f"{server}/library")
    rows(page).first.wait_for()
    page.evaluate(DROP, [["boat.md", "# Boat\n\nThe rescue launch uses VHF channel 72.\n"],
                         ["fees.txt", "The annual membership fee is 120 euros.\n"]])
    # read the table in one step: the list re-renders while uploads finish
    expect(page.locator("#documents tbody tr[data-status=indexed]")).to_have_count(2, timeout=60_000)
    statuses = dict(page.evaluate("""[...document.querySelectorAll('#documents tbody tr')]
        .map((r) => [r.querySelector('th').innerText, r.dataset.status])"""))
    assert statuses == {"boat.md": "indexed", "fees.txt": "indexed", "broken.pdf": "failed"}
    broken = rows(page).filter(has_text="broken.pdf")
    assert broken.locator(".error-text").inner_text().strip()  # the reason is shown

    page.evaluate(DROP, [["fake.pdf", "not a PDF either"]])  # refused by the API: its reason shown
    page.locator("#library-error").wait_for()
    assert "fake.pdf" in page.locator("#library-error").inner_text() or \
        "PDF" in page.locator("#library-error").inner_text()
    assert rows(page).count() == 3

    rows(page).filter(has_text="fees.txt").get_by_role("button", name="Re-index fees.txt").click()
    page.get_by_role("status").filter(has_text="Re-indexed fees.txt").wait_for()

    page.once("dialog", lambda dialog: dialog.accept())
    rows(page).filter(has_text="boat.md").get_by_role("button", name="Delete boat.md").click()
    page.get_by_role("status").filter(has_text="Deleted boat.md").wait_for()
    # the list re-renders after the status line: wait for it rather than read it once
    expect(page.locator("#documents tbody tr th")).to_have_text(["broken.pdf", "fees.txt"])

    page.get_by_label("Collection").select_option("hr")  # another collection: its own documents
    page.locator("#library-collection", has_text="hr").wait_for()
    page.locator("#no-documents").wait_for()
    page.reload()  # the choice is remembered, and shared with the ask page
    expect(page.get_by_label("Collection")).to_have_value("hr")  # options load after the page
