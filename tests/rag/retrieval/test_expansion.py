"""Query expansion (rag/retrieval/expansion.py): which questions are expanded, the reply cleaned
into search words, remembered, and never a reason for a search to fail."""

import threading

import pytest

from rag.core.errors import GenerationError
from rag.models.generation_gate import GenerationGate
from rag.retrieval.expansion import MAX_CHARS, QueryExpander, clean
from tests.fakes import FakeGenerator


class Models:
    """What QueryExpander uses of rag.models.loaded.Models: the gate, the model and its key."""

    def __init__(self, generator, max_queue=4):
        self.generator = generator
        self.gate = GenerationGate(max_queue)

    def llm_key(self):
        return self.generator.name

    def llm_name(self):
        return self.generator.name


class Failing(FakeGenerator):
    def generate(self, messages, params, stop=None):
        raise GenerationError("the model server stopped", hint="restart it")
        yield


def test_the_reply_becomes_one_line_of_search_words():
    assert clean("```bash\nhead -n 20 file\n```") == "head -n 20 file"
    assert clean("`mkdir -p` and **install -d**") == "mkdir -p and install -d"
    long = clean("word " * 100)
    assert len(long) <= MAX_CHARS and long.endswith("word")


def test_only_the_configured_questions_are_expanded():
    model = FakeGenerator("head", "head", "head")
    cjk, every, off = (QueryExpander(Models(model), which) for which in ("cjk", "all", "off"))
    assert cjk.expand("只看文件最前面 20 行") == "head"
    assert cjk.expand("How do I see the first lines?") == ""
    assert every.expand("How do I see the first lines?") == "head"
    assert off.expand("只看文件最前面 20 行") == ""
    assert len(model.calls) == 2
    system, user = model.calls[0]
    assert system["role"] == "system" and "names" in system["content"]
    assert user == {"role": "user", "content": "只看文件最前面 20 行"}


def test_a_question_asked_again_is_not_sent_to_the_model_again():
    model = FakeGenerator("ln -s", "readlink", "ln -s")
    expander = QueryExpander(Models(model), "all", memory=1)
    assert expander.expand("make a symbolic link") == "ln -s"
    assert expander.expand("make a symbolic link") == "ln -s"
    assert len(model.calls) == 1
    expander.expand("where does a link point")  # the memory holds one: the first is forgotten
    assert expander.expand("make a symbolic link") == "ln -s"
    assert len(model.calls) == 3


def test_a_failing_model_or_a_full_queue_leaves_the_question_as_asked(caplog):
    models = Models(Failing())
    assert QueryExpander(models, "all").expand("make a symbolic link") == ""
    assert "query expansion failed" in caplog.text and not models.gate.live()
    busy = Models(FakeGenerator("ln -s"), max_queue=0)
    held = busy.gate.admit()  # an answer is generating and no one may queue behind it
    assert QueryExpander(busy, "all").expand("make a symbolic link") == ""
    held.release()


def test_the_expansion_waits_its_turn_at_the_gate():
    """The model serves one generation at a time: an expansion queues behind an answer (a model
    switch also waits for it) instead of running beside it."""
    models = Models(FakeGenerator("ln -s"))
    answer = models.gate.admit()
    result = []
    thread = threading.Thread(target=lambda: result.append(QueryExpander(models, "all").expand("link")))
    thread.start()
    thread.join(0.3)
    assert thread.is_alive() and not models.generator.calls
    answer.release()
    thread.join(5)
    assert result == ["ln -s"] and not models.gate.live()


def test_the_bundled_model_expands_a_search_and_an_answer_reports_it(tmp_path, real_embedder,
                                                                    real_generator, caplog):
    """End to end with the real models: the expansion is asked of the chat model once, through
    the gate, and the passages' scores are the question's own cosines, as without it.  The
    bundled model's expansions measured worse than none: the log says so, once."""
    from tests.workspace import Workspace

    ws = Workspace.make(tmp_path, real_embedder, real_generator, query_expansion="all")
    ws.settings.data_dir.mkdir(parents=True)
    (ws.settings.data_dir / "harbour.md").write_text(
        "# Harbour\n\nThe rescue launch uses VHF channel 72.\n\nThe harbour opens at dawn.\n\n"
        "# Fees\n\nFull membership costs 240 euros per year.\n")
    ws.indexer.ingest()
    question = "Which radio channel does the rescue boat listen on?"
    as_asked = {h.chunk.chunk_id: h.score for h in ws.retriever().search(question, 3)}
    expanded = ws.assistant.search(question, 3)
    expansion = ws.assistant.expander.expand(question)  # remembered: not generated again
    assert expansion and "\n" not in expansion
    for citation in expanded:
        assert citation.score == pytest.approx(as_asked[citation.chunk_id], abs=1e-4)
    answer = ws.assistant.ask(question, mode="extractive")
    assert answer.expansion == expansion and "72" in answer.answer
    assert not ws.library.models.gate.live()
    warnings = [r.getMessage() for r in caplog.records
                if "ARCHIVIST_QUERY_EXPANSION=all with the bundled" in r.getMessage()]
    assert len(warnings) == 1 and "ARCHIVIST_QUERY_EXPANSION=off" in warnings[0]
