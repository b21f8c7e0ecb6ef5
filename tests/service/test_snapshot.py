"""`archivist export` / `import`: a snapshot restores the same index; a bad archive touches nothing."""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import tarfile
from pathlib import Path

import pytest

from ingest.indexer import Indexer
from rag.core import collection_folders
from service.cli import main
from tests.workspace import Workspace
from ingest.snapshot import SnapshotError, export_index, import_index
from tests.conftest import make_settings
from tests.fakes import FakeEmbedder

QUESTIONS = ["Which port does the metrics exporter listen on?", "What colour is the emergency valve?"]


def _results(ws: Workspace) -> list[list[tuple[str, str]]]:
    return [[(c.source, c.chunk_id) for c in ws.assistant.search(q, 4)] for q in QUESTIONS]


def _tree(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture
def exported(tmp_path, data_dir):
    source = Workspace.make(tmp_path, embedder=FakeEmbedder())
    assert source.indexer.ingest().failed == 0
    source.records  # answers.sqlite3 exists
    archive = tmp_path / "snap.tar.gz"
    manifest = export_index(source.settings, archive)
    return source, archive, manifest


def test_export_then_import_gives_the_same_index(exported, tmp_path):
    source, archive, manifest = exported
    assert manifest["format_version"] == 1 and manifest["embedding_fingerprint"] == "fake:64"
    assert manifest["collections"]["default"]["chunks"] == source.store.count() > 0
    assert "answers.sqlite3" in manifest["files"] and "chroma/chroma.sqlite3" in manifest["files"]
    with tarfile.open(archive) as tar:
        assert not [n for n in tar.getnames() if n.endswith(("-wal", "-shm", ".lock"))]

    target = make_settings(tmp_path / "other").model_copy(update={"data_dir": source.settings.data_dir})
    import_index(target, archive)
    restored = Workspace.of(target, embedder=FakeEmbedder())
    assert _results(restored) == _results(source) and _results(source)[0]
    assert [d.model_dump() for d in restored.indexer.documents()] == [d.model_dump() for d in source.indexer.documents()]
    assert restored.store.count() == source.store.count()
    assert not list((tmp_path / "other").glob("*.bak*")) and not list((tmp_path / "other").glob(".*import*"))


def test_a_collections_embedding_model_travels_with_its_vectors(tmp_path, data_dir):
    source = Workspace.make(tmp_path, embedder=FakeEmbedder())
    for name in ("hr", "ops"):
        collection_folders.create(data_dir, name)
        (data_dir / name / "notes.md").write_text(f"# {name}\n\nStaff get 25 days of paid leave.\n")
        assert Indexer(source.library.collection(name)).ingest().added == 1
    # The model the marker chooses is what export reads (here the vectors are the fake's).
    collection_folders.write_choices(data_dir, "hr", {"embed_model": "multilingual-e5-small"})
    manifest = export_index(source.settings, tmp_path / "snap.tar.gz")
    assert manifest["collections"]["hr"]["embed_model"] == "multilingual-e5-small"
    assert manifest["collections"]["ops"]["embed_model"] == source.settings.embedding.embed_model

    # Restored elsewhere from a copy of data/ made before hr switched, and without ops' folder.
    other = tmp_path / "other"
    shutil.copytree(data_dir, other / "data")
    (other / "data" / "hr" / ".collection").write_text("")
    shutil.rmtree(other / "data" / "ops")
    target = make_settings(other)
    manifest = import_index(target, tmp_path / "snap.tar.gz")
    assert collection_folders.choices(target.data_dir, "hr") == {"embed_model": "multilingual-e5-small"}
    assert collection_folders.choices(target.data_dir, "default") == {}  # the configured one already
    assert manifest["restored"] == {"chosen": ["hr: multilingual-e5-small"], "missing": ["ops"]}


def test_import_refuses_a_non_empty_index_without_force(exported, tmp_path):
    source, archive, _ = exported
    before = _tree(source.settings.index_dir)
    with pytest.raises(SnapshotError, match="already holds an index") as err:
        import_index(source.settings, archive)
    assert "--force" in err.value.hint
    assert _tree(source.settings.index_dir) == before
    import_index(source.settings, archive, force=True)
    assert Workspace.of(source.settings, embedder=FakeEmbedder()).store.count() > 0
    assert not list(tmp_path.glob("index.bak*"))


def _rewrite(archive: Path, change) -> None:
    with tarfile.open(archive) as tar:
        members = [(m, tar.extractfile(m).read()) for m in tar.getmembers()]
    with tarfile.open(archive, "w:gz") as tar:
        for member, data in members:
            data = change(member.name, data)
            member.size = len(data)
            tar.addfile(member, io.BytesIO(data))


def _tamper_lexical(name, data):
    return data[:-1] + bytes([data[-1] ^ 1]) if name == "index/lexical-default.sqlite3" else data


def _wrong_version(name, data):
    if name != "manifest.json":
        return data
    manifest = json.loads(data)
    manifest["format_version"] = 99
    return json.dumps(manifest).encode()


@pytest.mark.parametrize("damage, message", [
    (lambda a: _rewrite(a, _tamper_lexical), "Checksum mismatch for lexical-default.sqlite3"),
    (lambda a: _rewrite(a, _wrong_version), "format version 99"),
    (lambda a: a.write_bytes(a.read_bytes()[: a.stat().st_size // 2]), "not a readable archive"),
    (lambda a: a.write_bytes(b"not an archive at all"), "not a readable archive"),
])
def test_a_bad_archive_is_refused_and_the_target_untouched(exported, tmp_path, damage, message):
    source, archive, _ = exported
    damage(archive)
    for target in (make_settings(tmp_path / "fresh"), source.settings):
        before = _tree(target.index_dir) if target.index_dir.exists() else None
        with pytest.raises(SnapshotError, match=message) as err:
            import_index(target, archive, force=True)
        assert err.value.hint
        assert (_tree(target.index_dir) if target.index_dir.exists() else None) == before
    assert not [p for p in tmp_path.rglob("*") if ".import-" in p.name or ".bak" in p.name]


def test_cli_export_and_import(exported, tmp_path, capsys, monkeypatch):
    source, _, _ = exported
    monkeypatch.setenv("ARCHIVIST_DATA_DIR", str(source.settings.data_dir))
    monkeypatch.setenv("ARCHIVIST_INDEX_DIR", str(source.settings.index_dir))
    archive = tmp_path / "cli.tar.gz"
    assert main(["export", str(archive)]) == 0
    assert "default:" in capsys.readouterr().out
    monkeypatch.setenv("ARCHIVIST_INDEX_DIR", str(tmp_path / "cli-index"))
    assert main(["import", str(archive)]) == 0
    assert main(["import", str(archive)]) == 2
    assert "--force" in capsys.readouterr().err
    _rewrite(archive, _tamper_lexical)
    assert main(["import", "--force", str(archive)]) == 2
    err = capsys.readouterr().err
    assert "Checksum mismatch" in err and "hint:" in err and "Traceback" not in err
