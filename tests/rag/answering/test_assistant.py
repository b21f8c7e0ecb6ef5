"""Decide first, queue last: cached answers and refusals never wait for (or queue behind) the model,
and a cached answer needs neither loading nor hashing it."""

from __future__ import annotations

import threading

import pytest

from rag.models.generation_gate import QueueFullError
from tests.fakes import FakeEmbedder, FakeGenerator
from tests.workspace import Workspace

CACHED = "Which VHF channel does the rescue launch use?"
FRESH = "When does the harbour open?"
REFUSED = "How do I configure pg_auto_failover?"


class HeldGenerator(FakeGenerator):
    """Starts its reply, then holds until the test lets it go: the model is busy meanwhile."""

    def __init__(self):
        super().__init__()
        self.busy = threading.Event()
        self.go = threading.Event()

    def generate(self, messages, params, stop=None):
        if self.go.is_set():  # not held: answer at once
            yield from super().generate(messages, params, stop)
            return
        self.busy.set()
        yield "The harbour"
        assert self.go.wait(30), "the test never let the model go"
        yield " opens at dawn [1]."


@pytest.fixture
def ws(tmp_path):
    generator = HeldGenerator()
    # The fake embedder's scores mean little: every question with a passage counts as answerable.
    ws = Workspace.make(tmp_path, FakeEmbedder(), generator, max_queue=0, min_score=0.1,
                        min_evidence=0.0)
    ws.settings.data_dir.mkdir(parents=True)
    (ws.settings.data_dir / "harbour.md").write_text(
        "# Harbour\n\nThe rescue launch uses VHF channel 72.\n\nThe harbour opens at dawn.\n")
    ws.indexer.ingest()
    generator.go.set()
    ws.assistant.ask(CACHED)  # recorded: asking again is answered from the record
    generator.go.clear()
    yield ws
    generator.go.set()


def test_a_cached_answer_and_a_refusal_do_not_wait_for_a_running_generation(ws):
    generator = ws.library.models.generator
    finished = threading.Event()
    running = threading.Thread(target=lambda: (ws.assistant.ask(FRESH), finished.set()))
    running.start()
    assert generator.busy.wait(10)  # the model is answering FRESH, holding the only slot

    # max_queue is 0: anything that needed the model now would be refused with a 429.
    cached = ws.assistant.ask(CACHED)
    refused = ws.assistant.ask(REFUSED)
    assert cached.cached and not cached.refused
    assert refused.refused and "pg_auto_failover" in refused.reason and refused.answer_id
    assert not finished.is_set()  # both came back while the generation was still running
    with pytest.raises(QueueFullError):
        ws.assistant.start(FRESH + " Really?")  # a question for the model is refused at once

    generator.go.set()
    running.join(10)
    assert finished.is_set()
    assert ws.library.models.gate.running == 0


def test_the_model_slot_is_free_while_an_answer_is_verified(ws):
    """The ticket goes back when the last token is out, before verification and recording."""
    ws.library.models.generator.go.set()
    gate = ws.library.models.gate
    seen = [(kind, gate.running) for kind, _ in ws.assistant.start(FRESH)]
    assert seen[0][0] == "citations" and {kind for kind, _ in seen[1:-1]} == {"token"}
    assert all(running == 1 for kind, running in seen if kind != "done")
    assert seen[-1] == ("done", 0)


def test_a_cached_answer_neither_loads_nor_hashes_the_model(tmp_path, monkeypatch):
    """The cache key names the model file by name, size and mtime: a fresh process answers a
    repeated question without loading the GGUF or reading its 100 MB for a sha256."""
    from rag.library import Library
    from rag.models.files import resolve_llm_model
    import rag.models.loaded as shared
    from rag.models.loaded import Models
    import rag.models.repository as repo
    from tests.conftest import make_settings

    loads, hashes = [], []
    gguf = resolve_llm_model(None)

    class CountedGenerator(FakeGenerator):
        def __init__(self, path, **kwargs):
            super().__init__()
            self.name, self.path = path.name, path
            loads.append(path)

    real_sha256 = repo.file_sha256
    monkeypatch.setattr(shared, "LlamaCppGenerator", CountedGenerator)
    monkeypatch.setattr(repo, "file_sha256", lambda path: hashes.append(path) or real_sha256(path))
    settings = make_settings(tmp_path, min_score=0.1)
    settings.data_dir.mkdir(parents=True)
    (settings.data_dir / "harbour.md").write_text("# Harbour\n\nThe rescue launch uses VHF channel 72.\n")

    first = Workspace(Library(settings, Models(settings, embedder=FakeEmbedder())))
    first.indexer.ingest()
    answer = first.assistant.ask(CACHED)
    assert (loads, hashes) == ([gguf], [gguf])
    assert first.assistant.answer_record(answer.answer_id)["provenance"]["llm_sha256"] == real_sha256(gguf)

    later = Workspace(Library(settings, Models(settings, embedder=FakeEmbedder())))  # a restart
    again = later.assistant.ask(CACHED)
    assert again.cached and again.answer_id == answer.answer_id
    assert (loads, hashes) == ([gguf], [gguf])  # nothing loaded, nothing hashed
