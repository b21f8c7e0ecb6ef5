"""The documents API: upload with checks, status, delete, re-index; safe names and types."""

import io
import zipfile

import pytest
from tests.http import local_client

from ingest.documents import UploadError, safe_name, store_upload
from rag.library import Library
from rag.models.loaded import Models
from service.app import create_app
from tests.conftest import make_settings
from tests.fakes import FakeEmbedder, FakeGenerator


def make_pdf(text: str) -> bytes:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("helvetica", size=12)
    pdf.multi_cell(0, 10, text)
    return bytes(pdf.output())


@pytest.fixture
def client(tmp_path):
    settings = make_settings(tmp_path, min_score=0.1, max_file_mb=1)
    settings.data_dir.mkdir(parents=True)
    (settings.data_dir / "old.md").write_text("# Old\n\nAn old note about lighthouses.\n")
    library = Library(settings, Models(settings, embedder=FakeEmbedder(), generator=FakeGenerator("ok")))
    library.create("hr")
    with local_client(create_app(settings, library=library)) as c:
        c.data_dir = settings.data_dir
        yield c


def upload(client, *files, collection=None):
    params = {"collection": collection} if collection else {}
    return client.post("/v1/documents", params=params,
                       files=[("file", (name, data, "application/octet-stream")) for name, data in files])


def test_upload_indexes_the_file_and_lists_it(client):
    reply = upload(client, ("manual.pdf", make_pdf("The pump pressure limit is 8 bar.")),
                   ("notes.txt", b"Ferry timetable changes in May.\n"))
    assert reply.status_code == 201, reply.text
    docs = {d["source"]: d for d in reply.json()["documents"]}
    assert docs["manual.pdf"]["status"] == "indexed" and docs["manual.pdf"]["chunks"] >= 1
    assert reply.json()["report"]["added"] == 2
    listed = {d["source"]: d["status"] for d in client.get("/v1/documents").json()["documents"]}
    assert listed == {"manual.pdf": "indexed", "notes.txt": "indexed", "old.md": "pending"}
    hits = client.post("/v1/search", json={"question": "pump pressure limit bar"}).json()["results"]
    assert hits[0]["source"] == "manual.pdf" and hits[0]["page"] == 1


def test_an_uploaded_scan_is_read_by_ocr_and_its_passages_say_so(client):
    from tests.scans import ENGLISH_PAGES, FONT, draw_page

    if not FONT.is_file():
        pytest.skip("needs fonts-wqy-zenhei (make test installs it)")
    png = io.BytesIO()
    draw_page(ENGLISH_PAGES[2]).save(png, "PNG")
    reply = upload(client, ("canteen", png.getvalue()))  # no extension: named for its content
    assert reply.status_code == 201, reply.text
    [doc] = reply.json()["documents"]
    assert doc["source"] == "canteen.png" and doc["status"] == "indexed" and doc["chunks"] >= 1
    hits = client.post("/v1/search", json={"question": "canteen opens closes"}).json()["results"]
    assert hits[0]["source"] == "canteen.png" and hits[0]["ocr"] is True
    assert 0.8 < hits[0]["ocr_confidence"] <= 1
    # the library page's "Scanned pages" column: this file one page, text files none
    listed = {d["source"]: d["ocr_pages"] for d in client.get("/v1/documents").json()["documents"]}
    assert listed["canteen.png"] == 1 and set(listed.values()) == {0, 1}


def test_uploads_go_to_the_named_collection_only(client):
    assert upload(client, ("leave.txt", b"Annual leave is 25 days.\n"), collection="hr").status_code == 201
    assert (client.data_dir / "hr" / "leave.txt").is_file()
    assert [d["source"] for d in client.get("/v1/documents", params={"collection": "hr"}).json()["documents"]] == ["leave.txt"]
    assert "leave.txt" not in {d["source"] for d in client.get("/v1/documents").json()["documents"]}
    assert upload(client, ("x.txt", b"x\n"), collection="nope").status_code == 404


def test_delete_and_reindex(client):
    doc = upload(client, ("notes.txt", b"Ferry timetable changes in May.\n")).json()["documents"][0]
    again = client.post(f"/v1/documents/{doc['id']}/reindex")
    assert again.status_code == 200 and again.json()["status"] == "indexed"
    assert client.get(f"/v1/documents/{doc['id']}").json()["source"] == "notes.txt"
    assert client.delete(f"/v1/documents/{doc['id']}").status_code == 204
    assert not (client.data_dir / "notes.txt").exists()
    assert client.get(f"/v1/documents/{doc['id']}").status_code == 404
    results = client.post("/v1/search", json={"question": "ferry timetable"}).json()["results"]
    assert all(r["source"] != "notes.txt" for r in results)


@pytest.mark.parametrize("name, data, status, message", [
    ("report.pdf", b"just some text pretending\n", 415, "named .pdf but its content is txt"),
    ("photo.txt", bytes(range(256)) * 8, 415, "not a format"),
    ("archive.docx", b"PK\x03\x04" + b"\x00" * 100, 415, "not a format"),
    ("empty.txt", b"", 422, "empty"),
    ("big.txt", b"a" * 1_100_000, 413, "over the 1 MB limit"),
])
def test_bad_uploads_are_refused_and_store_nothing(client, name, data, status, message):
    reply = upload(client, ("fine.txt", b"A fine file.\n"), (name, data))
    assert reply.status_code == status and message in reply.json()["detail"], reply.text
    assert reply.json()["hint"]
    assert sorted(p.name for p in client.data_dir.iterdir()) == ["hr", "old.md"]  # nothing stored


def test_content_decides_the_type_of_a_file_without_extension(client):
    reply = upload(client, ("README", b"Plain words about the harbour.\n"))
    assert reply.json()["documents"][0]["source"] == "README.txt"
    docx = io.BytesIO()
    with zipfile.ZipFile(docx, "w") as z:
        z.writestr("word/document.xml", "<w:document/>")
    assert upload(client, ("memo.pptx", docx.getvalue())).status_code == 415


@pytest.mark.parametrize("raw, safe", [
    ("../../etc/passwd", "passwd"),
    ("C:\\Users\\me\\report.pdf", "report.pdf"),
    (".hidden.txt", "hidden.txt"),
    ("a\nb\x00c.txt", "abc.txt"),
    ("季度报告.pdf", "季度报告.pdf"),
    ("x" * 300 + ".txt", "x" * 150 + ".txt"),
])
def test_safe_names(raw, safe):
    assert safe_name(raw) == safe


def test_unusable_name_and_no_leftovers(tmp_path):
    with pytest.raises(UploadError):
        safe_name("../..")
    with pytest.raises(UploadError):
        store_upload(tmp_path, "a.pdf", io.BytesIO(b"not a pdf"), 100)
    assert list(tmp_path.iterdir()) == []
