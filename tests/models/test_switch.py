"""Switching the chat model of a running server (POST /v1/admin/model): an answer streaming on
the old model finishes on it, and is recorded as its; the next one runs on the new model."""

from __future__ import annotations

import shutil
import threading
import time

import httpx
import pytest

from rag.models.files import file_sha256
from rag.models.loaded import Models
from rag.models.repository import bundled_model
from service import cli, handoff
from service.app import create_app
from service.auth import KeyStore
from tests.models.ggufs import tiny_gguf
from tests.server import serve
from tests.workspace import Workspace

QUESTION = "What is the maximum load of the Orion crane?"


class SlowGenerator:
    """200 tokens, 10 ms apart; one generation at a time, like llama.cpp."""

    context_window = 4096

    def __init__(self, path):
        self.path, self.name = path, path.name
        self.produced = 0
        self.lock = threading.Lock()

    def generate(self, messages, params, stop=None):
        with self.lock:
            for _ in range(200):
                time.sleep(0.01)
                self.produced += 1
                yield " word"

    def count_tokens(self, text):
        return len(text.split())


def stream_until(lines, kind, count=1):
    """Read SSE lines until the `count`-th event of `kind`; returns its data line."""
    seen = 0
    for line in lines:
        if line == f"event: {kind}":
            seen += 1
        elif seen >= count and line.startswith("data: "):
            return line[6:]
    raise AssertionError(f"stream ended before {count} {kind} event(s)")


@pytest.mark.slow
def test_a_switch_finishes_the_streaming_answer_on_the_old_model(tmp_path, data_dir, real_embedder,
                                                                 monkeypatch, capsys):
    import json

    models_dir = tmp_path / "models"
    models_dir.mkdir()
    tiny_gguf(models_dir / "a.gguf")
    tiny_gguf(models_dir / "b.gguf", rows=65)
    loaded = {}

    def load(self, path):
        loaded[path.name] = SlowGenerator(path)
        return loaded[path.name]

    monkeypatch.setattr(Models, "_load", load)
    ws = Workspace.make(tmp_path, real_embedder, None, models_dir=models_dir)
    ws.library.models.repo.use("a")
    ws.indexer.ingest()
    with serve(create_app(ws.settings, ws.library)) as base:
        body = {"question": QUESTION, "stream": True}
        with httpx.stream("POST", f"{base}/v1/ask", json=body, timeout=30) as reply:
            lines = reply.iter_lines()
            stream_until(lines, "token", 5)
            switched = httpx.post(f"{base}/v1/admin/model", json={"name": "b"}, timeout=30)
            assert switched.status_code == 200, switched.text
            assert switched.json()["active"] == "b" and switched.json()["previous"] == "a"
            assert loaded["a.gguf"].produced < 200  # the switch did not wait for the answer
            done = json.loads(stream_until(lines, "done"))
        assert loaded["a.gguf"].produced == 200 and loaded["b.gguf"].produced == 0
        then = ws.records.get_answer(done["answer_id"])["provenance"]
        assert then["llm_model"] == "a.gguf"
        assert then["llm_sha256"] == file_sha256(models_dir / "a.gguf")

        health = httpx.get(f"{base}/v1/health").json()
        assert health["llm_model"] == "b.gguf"
        assert health["llm_sha256"] == file_sha256(models_dir / "b.gguf")
        # The same question again: not the cached answer of model a, a new one from model b.
        again = httpx.post(f"{base}/v1/ask", json={"question": QUESTION}, timeout=30).json()
        assert not again.get("cached") and loaded["b.gguf"].produced == 200
        now = ws.records.get_answer(again["answer_id"])["provenance"]
        assert now["llm_model"] == "b.gguf"
        replayed = ws.assistant.replay(done["answer_id"])  # what `archivist replay` prints
        assert replayed["model_changed"] is True
        assert replayed["llm_model"] == {"then": "a.gguf", "now": "b.gguf"}

        back = httpx.post(f"{base}/v1/admin/model", json={"previous": True}, timeout=30).json()
        assert (back["active"], back["previous"]) == ("a", "b")
        missing = httpx.post(f"{base}/v1/admin/model", json={"name": "nope"}, timeout=30)
        assert missing.status_code == 404 and httpx.get(f"{base}/v1/health").json()["llm_model"] == "a.gguf"

        # `archivist models use` beside a running server asks it to switch (service/handoff.py).
        for name, value in (("INDEX_DIR", ws.settings.index_dir), ("MODELS_DIR", models_dir),
                            ("DATA_DIR", ws.settings.data_dir)):
            monkeypatch.setenv(f"ARCHIVIST_{name}", str(value))
        with handoff.register(ws.settings, "127.0.0.1", int(base.rsplit(":", 1)[1])):
            assert cli.main(["models", "use", "b"]) == 0
        assert "active: b (previous: a); the server switched in" in capsys.readouterr().out
        assert httpx.get(f"{base}/v1/health").json()["llm_model"] == "b.gguf"

        reader = KeyStore(ws.settings.keys_path).create("reader", None, "test")
        refused = httpx.post(f"{base}/v1/admin/model", json={"name": "b"},
                             headers={"Authorization": f"Bearer {reader}"}, timeout=30)
        assert refused.status_code == 403


@pytest.mark.slow
def test_a_switch_between_two_real_models_mid_stream(tmp_path, data_dir, real_embedder):
    """The bundled SmolLM2 under two names, loaded by llama.cpp; prints the switch time."""
    import json

    models_dir = tmp_path / "models"
    models_dir.mkdir()
    for name in ("a", "b"):
        shutil.copy(bundled_model().path, models_dir / f"{name}.gguf")
    ws = Workspace.make(tmp_path, real_embedder, None, models_dir=models_dir, n_gpu_layers=0,
                        max_tokens=128, answer_mode="generative")
    ws.library.models.repo.use("a")
    ws.indexer.ingest()
    try:
        with serve(create_app(ws.settings, ws.library)) as base:
            body = {"question": QUESTION, "stream": True}
            with httpx.stream("POST", f"{base}/v1/ask", json=body, timeout=120) as reply:
                lines = reply.iter_lines()
                stream_until(lines, "token", 1)
                old = ws.library.models.generator
                switched = httpx.post(f"{base}/v1/admin/model", json={"name": "b"}, timeout=120)
                assert switched.status_code == 200, switched.text
                print(f"hot switch: {switched.json()['load_s']:.2f} s to load and swap in")
                done = json.loads(stream_until(lines, "done"))
            assert done["answer"].strip()
            assert ws.records.get_answer(done["answer_id"])["provenance"]["llm_model"] == "a.gguf"
            assert ws.library.models.generator is not old
            del old  # the retired model is freed once nothing holds it
            assert httpx.get(f"{base}/v1/health").json()["llm_model"] == "b.gguf"
            again = httpx.post(f"{base}/v1/ask", json={"question": QUESTION}, timeout=120).json()
            assert ws.records.get_answer(again["answer_id"])["provenance"]["llm_model"] == "b.gguf"
    finally:
        ws.library.close()


@pytest.mark.slow
def test_compare_answers_one_question_with_two_real_models(tmp_path, data_dir, real_embedder,
                                                           monkeypatch, capsys):
    import json

    from rag.library import Library

    models_dir = tmp_path / "models"
    models_dir.mkdir()
    for name in ("a", "b"):
        shutil.copy(bundled_model().path, models_dir / f"{name}.gguf")
    for name, value in (("MODELS_DIR", models_dir), ("DATA_DIR", data_dir),
                        ("INDEX_DIR", tmp_path / "index"), ("MAX_TOKENS", 48),
                        ("N_GPU_LAYERS", 0)):
        monkeypatch.setenv(f"ARCHIVIST_{name}", str(value))
    monkeypatch.setattr(cli, "make_library",
                        lambda settings: Library(settings, Models(settings, embedder=real_embedder)))
    assert cli.main(["ingest"]) == 0
    capsys.readouterr()
    assert cli.main(["models", "compare", "a", "b", "-q", QUESTION, "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["model"] for r in rows] == ["a", "b"]
    assert all(r["answer"].strip() and not r["refused"] for r in rows)
    assert rows[0]["answer"] == rows[1]["answer"]  # the same weights, the same seed
    assert not (models_dir / "active.json").exists()
    assert cli.main(["models", "compare", "a", "-q", QUESTION]) == 2
