"""A request sees one index: asks and evals running across a reindex never fail or mix
generations, the old generation goes when its last reader leaves, and reads never write."""

from __future__ import annotations

import threading

import pytest

from rag.core.errors import IndexNeedsRepairError
from rag.storage import index_generations
from rag.storage.chunk_store import ChunkStore
from rag.storage.index_views import IndexViews
from tests.fakes import FakeEmbedder, FakeGenerator
from tests.workspace import Workspace

QUESTIONS = ["Which port does the metrics exporter listen on?", "What colour is the emergency valve?",
             "How many days of paid leave do employees get?", "What is the maximum load of the Orion crane?"]


def chroma_names(ws: Workspace) -> set[str]:
    from rag.storage.chunk_store import _client

    return {c.name for c in _client(ws.settings.chroma).list_collections()}


def test_an_eval_running_across_a_reindex_reads_one_generation_to_the_end(tmp_path, data_dir,
                                                                         monkeypatch):
    ws = Workspace.make(tmp_path, FakeEmbedder(), FakeGenerator(), min_score=0.1)
    ws.indexer.ingest()
    questions = tmp_path / "q.jsonl"
    questions.write_text("\n".join(f'{{"id": "{i}", "q": "{q}", "expect": ["x"]}}'
                                   for i, q in enumerate(QUESTIONS * 10)))
    reindexed, errors = threading.Event(), []
    queried: list[str] = []
    query = ChunkStore.query

    def recorded_query(self, *args, **kwargs):
        queried.append(self._collection.name)
        if len(queried) == 1:  # the eval holds its view: the whole reindex happens now
            threading.Thread(target=reindex).start()
            assert reindexed.wait(60)
        return query(self, *args, **kwargs)

    def reindex():
        try:
            ws.indexer.reindex()
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)
        reindexed.set()

    monkeypatch.setattr(ChunkStore, "query", recorded_query)
    reports = ws.assistant.evaluate([questions], top_k=4)
    assert not errors, errors
    assert index_generations.active(ws.settings.index_dir, "default") == 1
    assert reports[0].answerable == 40 and reports[0].hit_at_1 == 0  # expects file "x": a miss
    # Each question is searched twice (ranking, and the ask's refusal decision), every time on
    # generation 0, from the first question to the last.
    assert queried == ["default"] * 80
    # The old generation lived as long as the eval read it, and went when the eval ended.
    assert "default" not in chroma_names(ws) and "default-g1" in chroma_names(ws)
    assert not index_generations.names(ws.settings.index_dir, "default", 0).lexical_path.exists()
    assert ws.assistant.search(QUESTIONS[0])  # new requests read generation 1
    assert queried[-1] == "default-g1"


class HeldGenerator(FakeGenerator):
    def __init__(self):
        super().__init__("Port 9187 [1].")
        self.busy, self.go = threading.Event(), threading.Event()

    def generate(self, messages, params, stop=None):
        self.busy.set()
        assert self.go.wait(30)
        yield from super().generate(messages, params, stop)


def test_an_ask_running_across_a_reindex_answers_from_the_index_it_started_on(tmp_path, data_dir):
    generator = HeldGenerator()
    ws = Workspace.make(tmp_path, FakeEmbedder(), generator, min_score=0.1)
    ws.indexer.ingest()
    result = {}
    asking = threading.Thread(target=lambda: result.update(answer=ws.assistant.ask(QUESTIONS[0])))
    asking.start()
    assert generator.busy.wait(10)  # retrieved from generation 0; the model is writing

    ws.indexer.reindex()  # does not wait for the ask
    assert index_generations.active(ws.settings.index_dir, "default") == 1

    generator.go.set()
    asking.join(30)
    answer = result["answer"]
    assert not answer.refused and answer.citations[0].source == "guide.html"
    record = ws.assistant.answer_record(answer.answer_id)
    assert record["provenance"]["index_generation"] == 0
    after = ws.assistant.ask(QUESTIONS[0] + " Please.")
    assert ws.assistant.answer_record(after.answer_id)["provenance"]["index_generation"] == 1


class FakeView:
    def __init__(self, names):
        self.names, self.closed, self.dropped = names, False, False
        self.generation = names.generation

    def require_readable(self):
        pass

    def close(self):
        self.closed = True

    def drop(self):
        self.dropped = self.closed = True


def test_a_switched_out_view_is_dropped_only_when_its_last_reader_leaves(tmp_path):
    names = [index_generations.names(tmp_path, "default", g) for g in (0, 1)]
    pointer = {"now": names[0]}
    views = IndexViews(FakeView, lambda: pointer["now"])
    with views.reading() as old:
        with views.reading() as same:
            assert same is old
        assert views.switch(FakeView(names[1]), names[0])
        pointer["now"] = names[1]
        with views.reading() as new:
            assert new.names == names[1]
        assert not old.closed  # still read here
    assert old.dropped


def test_a_generation_switched_by_another_process_is_closed_not_dropped(tmp_path):
    names = [index_generations.names(tmp_path, "default", g) for g in (0, 1)]
    pointer = {"now": names[0]}
    views = IndexViews(FakeView, lambda: pointer["now"])
    with views.reading() as old:
        pointer["now"] = names[1]  # `archivist reindex` elsewhere moved the pointer
        with views.reading() as new:
            assert new.names == names[1]
    assert old.closed and not old.dropped  # the process that built the new one drops the old


def test_reads_never_rebuild_the_keyword_index(tmp_path, data_dir):
    import sqlite3

    ws = Workspace.make(tmp_path, FakeEmbedder())
    ws.indexer.ingest()
    ws.library.close()
    lexical = index_generations.names(ws.settings.index_dir, "default", 0).lexical_path
    db = sqlite3.connect(lexical)
    db.execute("UPDATE meta SET value = '0' WHERE key = 'terms_version'")  # made by an old version
    db.commit()
    db.close()

    later = Workspace.make(tmp_path, FakeEmbedder())
    with pytest.raises(IndexNeedsRepairError) as refused:
        later.assistant.search(QUESTIONS[0])
    assert "archivist ingest" in refused.value.hint
    db = sqlite3.connect(lexical)
    assert db.execute("SELECT value FROM meta WHERE key = 'terms_version'").fetchone()[0] == "0"
    db.close()  # the read left the index as it was
    assert later.indexer.repair() is True
    assert later.assistant.search(QUESTIONS[0])[0].source == "guide.html"
    assert later.indexer.repair() is False  # in step now: nothing to do
