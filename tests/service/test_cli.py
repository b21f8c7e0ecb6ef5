"""The `archivist` command: in-process for speed, and once as the installed console script."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from rag.core.errors import ConfigError
from service.cli import main


@pytest.fixture
def env(tmp_path, corpus, monkeypatch):
    shutil.copytree(corpus, tmp_path / "data")
    monkeypatch.setenv("ARCHIVIST_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("ARCHIVIST_INDEX_DIR", str(tmp_path / "index"))
    return tmp_path


def run(capsys, *args):
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_ingest_search_ask_and_reingest(env, capsys):
    code, out, _ = run(capsys, "ingest", "--json")
    report = json.loads(out)
    assert code == 0 and report["added"] == 10 and report["failed"] == 0

    code, out, _ = run(capsys, "search", "Which port does the metrics exporter listen on?", "--json")
    best = json.loads(out)["results"][0]
    assert code == 0 and best["source"] == "guide.html" and best["heading"] == "Metrics exporter"

    code, out, _ = run(capsys, "ask", "What colour is the emergency valve?", "--top-k", "2", "--json")
    answer = json.loads(out)
    assert code == 0 and answer["citations"][0]["source"] == "reports/turbine.pdf"
    assert answer["citations"][0]["page"] == 3 and len(answer["citations"]) <= 2

    code, out, _ = run(capsys, "ask", "What colour is the emergency valve?")
    assert code == 0 and "reports/turbine.pdf, page 3" in out

    (env / "data" / "deck.pptx").unlink()
    code, out, _ = run(capsys, "ingest", "--json")
    report = json.loads(out)
    assert (report["removed"], report["unchanged"], report["chunks_embedded"]) == (1, 9, 0)


def test_errors_are_one_line_with_a_hint_and_no_traceback(env, capsys, monkeypatch):
    code, _, err = run(capsys, "search", "   ")
    assert code == 2 and "error: The question is empty." in err and "Traceback" not in err
    monkeypatch.setenv("ARCHIVIST_TOP_K", "zero")
    code, _, err = run(capsys, "search", "valve")
    assert code == 2 and "top_k" in err and "hint:" in err
    monkeypatch.delenv("ARCHIVIST_TOP_K")
    monkeypatch.setenv("ARCHIVIST_DATA_DIR", str(env / "nowhere"))
    code, _, err = run(capsys, "ingest")
    assert code == 2 and "does not exist" in err


def test_chat_keeps_the_conversation(env, capsys, monkeypatch):
    run(capsys, "ingest")
    questions = iter(["What is the maximum load of the Orion crane?", "At what radius?", ""])
    monkeypatch.setattr("builtins.input", lambda prompt="": next(questions))
    code, out, _ = run(capsys, "chat")
    assert code == 0 and out.count("specs.docx") >= 2


def test_eval_and_a_path_glob_from_the_command_line(env, capsys):
    run(capsys, "ingest")
    questions = env / "q.jsonl"
    questions.write_text('{"id": "1", "q": "What colour is the emergency valve?", "expect": ["turbine"]}\n'
                         '{"id": "2", "q": "Which port does the metrics exporter listen on?", "expect": ["guide"]}\n')
    code, out, _ = run(capsys, "eval", str(questions), "--json")
    report = json.loads(out)[0]
    assert code == 0 and (report["answerable"], report["hit_at_1"]) == (2, 1.0)
    code, out, _ = run(capsys, "search", "how much power", "--path", "reports/**/*.pdf", "--json")
    assert {r["source"] for r in json.loads(out)["results"]} == {"reports/turbine.pdf"}
    code, out, _ = run(capsys, "search", "how much power", "--path", "*.pdf", "--json")
    assert code == 0 and json.loads(out)["results"] == []  # top-level PDFs only: there are none


def test_doctor_reports_models_offline_check_and_gpu(env, capsys):
    code, out, _ = run(capsys, "doctor", "--json")
    report = json.loads(out)
    assert code == 0 and report["offline"]["ok"], report["offline"]
    assert report["models"]["llm"]["sha256"] and report["models"]["llm"]["bytes"] > 50_000_000
    import llama_cpp  # the build's own answer, not doctor's wrapper around it

    assert report["gpu"]["llama_cpp_gpu_offload"] is bool(llama_cpp.llama_supports_gpu_offload())
    assert report["gpu"]["n_threads"] == len(os.sched_getaffinity(0))  # what llama.cpp is given
    # This machine's truth: a CPU build, so none of the bundled model's 30 layers is offloaded
    # (the default asks for all of them), and the embedder runs on the CPU.
    assert report["gpu"]["llama_cpp_backend"] == "CPU" and "CPU :" in report["gpu"]["llama_cpp_system_info"]
    assert report["gpu"]["gpu_layers"] == {"requested": -1, "resolved": -1, "model_layers": 30,
                                           "offloaded": 0}
    assert report["gpu"]["embedding_device"] == "cpu" and "vram" in report["gpu"]
    assert report["config"]["data_dir"] == str(env / "data")
    assert report["config"]["retrieval"]["min_score"] == 0.52  # the sections, as in effect


def test_console_script_is_installed(env):
    script = Path(sys.executable).parent / "archivist"
    result = subprocess.run([str(script), "ingest", "--json"], capture_output=True, text=True,
                            env=dict(os.environ), timeout=300)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["added"] == 10


def test_search_json_and_text_say_a_passage_was_read_by_ocr(tmp_path, monkeypatch, capsys):
    from tests.scans import CHINESE_PAGES, ENGLISH_PAGES, FONT, save_pdf

    if not FONT.is_file():
        pytest.skip("needs fonts-wqy-zenhei (make test installs it)")
    (tmp_path / "data").mkdir()
    save_pdf(tmp_path / "data" / "scan.pdf", [CHINESE_PAGES[0], ENGLISH_PAGES[2]])
    monkeypatch.setenv("ARCHIVIST_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("ARCHIVIST_INDEX_DIR", str(tmp_path / "index"))
    monkeypatch.setenv("ARCHIVIST_OCR_MAX_PAGES", "1")
    code, out, _ = run(capsys, "ingest", "--json")
    report = json.loads(out)
    assert code == 0 and report["added"] == 1
    assert report["skipped_pages"][0]["source"] == "scan.pdf"
    assert "ARCHIVIST_OCR_MAX_PAGES" in report["skipped_pages"][0]["reason"]
    code, out, _ = run(capsys, "search", "冷却水泵什么时候更换的？", "--json")
    best = json.loads(out)["results"][0]
    assert best["page"] == 1 and best["ocr"] is True and 0.8 < best["ocr_confidence"] <= 1
    code, out, _ = run(capsys, "search", "冷却水泵什么时候更换的？")
    assert "scan.pdf, page 1 (OCR, confidence " in out


def test_the_cli_ingest_embeds_in_bulk_mode_and_ask_does_not(monkeypatch, tmp_path):
    from rag.models import loaded
    from service import cli

    monkeypatch.setattr(loaded, "cpu_has_amx_bf16", lambda: True)
    monkeypatch.setenv("ARCHIVIST_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("ARCHIVIST_INDEX_DIR", str(tmp_path / "index"))
    (tmp_path / "data").mkdir()
    seen = []

    def make_library(settings):  # records what the command would run with, and stops it there
        seen.append(settings.embedding.embed_backend)
        raise ConfigError("stopped by the test")

    monkeypatch.setattr(cli, "make_library", make_library)
    for command in (["ingest"], ["reindex"], ["search", "boats"]):
        assert cli.main(command) == 2
    assert seen == ["torch-bf16", "torch-bf16", "auto"]
