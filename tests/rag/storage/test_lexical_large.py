"""The large-index keyword search: common words no longer find candidates on their own, and every
chunk with one of the question's rarer words keeps its exact BM25 score and place."""

import pytest

from ingest.chunking import chunk_id
from rag.core.shapes import Chunk, sha256_text
import rag.storage.lexical_sqlite as lexical_module
from rag.storage.lexical_sqlite import SqliteLexicalIndex, _any


def chunk(source, ordinal, text):
    digest = sha256_text(text)
    return Chunk(chunk_id(source, digest, ordinal), source, text, ordinal * 100,
                 ordinal * 100 + len(text), None, None, digest, ordinal, "f")


@pytest.fixture
def index(tmp_path):
    """60 chunks: "database" in all of them, "table" in half, "vacuum" and "freeze" in a few, and
    one chunk full of the common words and nothing else."""
    lexical = SqliteLexicalIndex(tmp_path / "lexical.sqlite3")
    for f in range(6):
        texts = []
        for n in range(10):
            words = ["database", f"filler{f}x{n}", "rows"]
            if n % 2:
                words.append("table")
            if (f * 10 + n) % 7 == 0:
                words += ["vacuum"] * (1 + n % 3)
            if (f * 10 + n) % 11 == 0:
                words.append("freeze")
            texts.append(" ".join(words))
        lexical.replace_source(f"doc{f}.txt", [chunk(f"doc{f}.txt", n, t) for n, t in enumerate(texts)])
    lexical.replace_source("noise.txt", [chunk("noise.txt", 0, "table database " * 30)])
    lexical.bump_version()
    yield lexical
    lexical.close()


def exact(lexical, question_terms, k, sources=None):
    return lexical._best(_any(question_terms), k, sources)


QUESTION = ["vacuum", "freeze", "table", "database"]


def test_small_queries_run_the_exact_query(index):
    assert index._common(QUESTION) == set()  # 61 + 31 + ... postings: under the budget
    assert index.search(QUESTION, 10) == exact(index, QUESTION, 10)


def test_the_most_frequent_terms_are_set_aside_only_until_the_rest_fit_the_budget(index, monkeypatch):
    monkeypatch.setattr(lexical_module, "COMMON_SHARE", 0.3)  # more than 18 of the 61 chunks
    monkeypatch.setattr(lexical_module, "POSTINGS_BUDGET", 50)
    assert index._common(QUESTION) == {"database"}  # 61 postings; the other three have 46
    monkeypatch.setattr(lexical_module, "POSTINGS_BUDGET", 10)
    assert index._common(QUESTION) == {"database", "table"}  # "vacuum" is in too few to go


def test_over_the_budget_every_chunk_with_a_rare_word_keeps_its_exact_score_and_place(index, monkeypatch):
    monkeypatch.setattr(lexical_module, "POSTINGS_BUDGET", 15)
    monkeypatch.setattr(lexical_module, "COMMON_SHARE", 0.3)
    assert index._common(QUESTION) == {"table", "database"}

    everything = exact(index, QUESTION, 100)
    with_rare_word = [hit for hit in everything if hit.chunk_id in
                      {h.chunk_id for h in exact(index, ["vacuum", "freeze"], 100)}]
    for k in (3, 5, 100):
        assert index.search(QUESTION, k) == with_rare_word[:k]
    # The chunk of common words alone ranked among the exact query's hits, and is left out.
    assert "noise.txt" in {hit.source for hit in everything}
    assert "noise.txt" not in {hit.source for hit in index.search(QUESTION, 100)}


def test_the_split_respects_a_source_filter(index, monkeypatch):
    monkeypatch.setattr(lexical_module, "POSTINGS_BUDGET", 15)
    monkeypatch.setattr(lexical_module, "COMMON_SHARE", 0.3)
    hits = index.search(QUESTION, 10, sources=["doc1.txt", "doc4.txt"])
    assert hits and {hit.source for hit in hits} <= {"doc1.txt", "doc4.txt"}
    assert hits == [hit for hit in exact(index, QUESTION, 100, ["doc1.txt", "doc4.txt"])
                    if hit.chunk_id in {h.chunk_id for h in exact(index, ["vacuum", "freeze"], 100)}][:10]
    assert index.search(QUESTION, 10, sources=[]) == []


def test_only_common_words_or_only_rare_words_run_one_query(index, monkeypatch):
    monkeypatch.setattr(lexical_module, "POSTINGS_BUDGET", 0)
    monkeypatch.setattr(lexical_module, "COMMON_SHARE", 0.3)
    assert index.search(["table", "database"], 5) == exact(index, ["table", "database"], 5)
    assert index.search(["vacuum", "freeze"], 5) == exact(index, ["vacuum", "freeze"], 5)


def test_document_frequencies_are_recounted_when_the_index_changes(index, monkeypatch):
    monkeypatch.setattr(lexical_module, "POSTINGS_BUDGET", 0)
    monkeypatch.setattr(lexical_module, "COMMON_SHARE", 0.3)
    assert "freeze" not in index._common(QUESTION)
    index.replace_source("more.txt", [chunk("more.txt", n, f"freeze item{n}") for n in range(40)])
    assert "freeze" not in index._common(QUESTION)  # cached until the version changes
    index.bump_version()
    assert "freeze" in index._common(QUESTION)  # now in 45 of 101 chunks
