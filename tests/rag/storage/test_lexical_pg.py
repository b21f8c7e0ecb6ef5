"""The lexical index in PostgreSQL ranks as the SQLite FTS5 one does: the same chunks, the same
questions (English, Chinese, identifiers, headings), the same hits in the same order with the
same BM25 scores; and the rest of the interface behaves the same."""

import hashlib

import pytest

from rag.core.shapes import Chunk
from rag.language.terms import query_terms
from rag.storage.lexical_postgres import PostgresLexicalIndex
from rag.storage.lexical_sqlite import SqliteLexicalIndex

TEXTS = {
    "boats.md": [("Safety", "The rescue launch is crewed by two qualified volunteers. Its radio "
                            "works on VHF channel 72."),
                 ("Safety", "Crews check the launch's engines every Saturday."),
                 (None, "Junior members under eighteen pay 60 euros per year.")],
    "db.txt": [("Tuning", "Raise max_connections in postgresql.conf, then restart the server."),
               ("Tuning", "The pg_hba.conf file controls client authentication."),
               ("Connections", "Each connection uses memory; connecting is expensive.")],
    "zh.md": [("数据库配置", "在北京出差住宿标准是每晚五百元，上海为六百元。"),
              ("数据库配置", "数据库连接数的上限由 max_connections 参数决定。"),
              (None, "报销需要在出差结束后十个工作日内提交。")],
    "cafe.txt": [("Café", "The café opens at nine; the naïve visitor pays extra.")],
}
QUESTIONS = ["Who crews the rescue launch?", "How much do juniors pay?", "max_connections",
             "pg_hba.conf authentication", "connection memory", "北京出差住宿标准是多少？",
             "数据库连接数上限", "报销什么时候提交", "cafe naive", "launch safety radio channel",
             "nothing matches this xyzzy"]


def chunks_of(source, file_hash="f1"):
    out = []
    for ordinal, (heading, text) in enumerate(TEXTS[source]):
        out.append(Chunk(chunk_id=hashlib.sha1(f"{source}{ordinal}{text}".encode()).hexdigest(),
                         source=source, text=text, start=ordinal * 100, end=ordinal * 100 + 90,
                         page=None, heading=heading, content_hash=hashlib.sha256(text.encode()).hexdigest(),
                         ordinal=ordinal, file_hash=file_hash))
    return out


@pytest.fixture
def both(tmp_path, postgres_server):
    sqlite = SqliteLexicalIndex(tmp_path / "lexical.sqlite3")
    pg = PostgresLexicalIndex(postgres_server.fresh_database(), "default")
    for index in (sqlite, pg):
        for source in TEXTS:
            index.replace_source(source, chunks_of(source))
    yield sqlite, pg
    sqlite.close()
    pg.close()


@pytest.mark.parametrize("question", QUESTIONS)
def test_the_same_hits_in_the_same_order_with_the_same_scores(both, question):
    sqlite, pg = both
    terms = query_terms(question)
    expected, got = sqlite.search(terms, 10), pg.search(terms, 10)
    assert [h.chunk_id for h in got] == [h.chunk_id for h in expected]
    assert [h.bm25 for h in got] == pytest.approx([h.bm25 for h in expected], rel=1e-6)
    within = pg.search(terms, 10, ["db.txt", "zh.md"])
    assert [h.chunk_id for h in within] == [h.chunk_id for h in sqlite.search(terms, 10, ["db.txt", "zh.md"])]
    assert pg.search(terms, 10, []) == []


def test_the_rest_of_the_interface_matches(both):
    sqlite, pg = both
    words = ["pg_hba.conf", "postgresql.conf", "patroni", "max_connections", "cafe", "ora-01555"]
    assert pg.absent(words) == sqlite.absent(words) == ["patroni", "ora-01555"]
    ids = [c.chunk_id for c in chunks_of("boats.md")]
    assert pg.chunks(ids) == sqlite.chunks(ids)
    middle = chunks_of("db.txt")[1]
    assert pg.neighbours(middle, 1, 1) == sqlite.neighbours(middle, 1, 1)
    assert pg.chunks_in_span(middle, 0, 200) == sqlite.chunks_in_span(middle, 0, 200)
    assert pg.neighbours(chunks_of("db.txt", "other")[1], 1, 1) == []  # another version of the file
    for index in (sqlite, pg):
        before = index.index_version()
        index.bump_version()
        assert index.index_version() != before
        index.replace_source("db.txt", chunks_of("db.txt")[:1])
        index.delete_source("cafe.txt")
    assert pg.count() == sqlite.count() == 7 and pg.sources() == sqlite.sources()
    assert pg.search(["connection"], 5) and [h.chunk_id for h in pg.search(["memory"], 5)] == []
    pg.clear()
    assert pg.is_empty() and not pg.stale


def test_indexes_in_one_database_are_separate_and_dropped_whole(postgres_server):
    url = postgres_server.fresh_database()
    live, next_generation = PostgresLexicalIndex(url, "default"), PostgresLexicalIndex(url, "default-g1")
    live.replace_source("boats.md", chunks_of("boats.md"))
    next_generation.replace_source("db.txt", chunks_of("db.txt"))
    assert live.sources() == {"boats.md"} and next_generation.sources() == {"db.txt"}
    assert live.index_version() != next_generation.index_version()
    next_generation.drop()
    assert next_generation.is_empty() and live.count() == 3
    live.close()
    next_generation.close()


def test_passages_read_by_ocr_keep_their_confidence_in_both(both):
    import dataclasses

    scanned = [dataclasses.replace(c, page=n + 1, ocr_confidence=0.9 - n / 10)
               for n, c in enumerate(chunks_of("db.txt", file_hash="scan"))]
    for index in both:
        index.replace_source("db.txt", scanned)
    sqlite, pg = both
    assert pg.ocr_pages() == sqlite.ocr_pages() == {"db.txt": 3}
    ids = [c.chunk_id for c in scanned]
    assert ({cid: chunk.ocr_confidence for cid, (chunk, _) in pg.chunks(ids).items()}
            == {cid: chunk.ocr_confidence for cid, (chunk, _) in sqlite.chunks(ids).items()}
            == {c.chunk_id: c.ocr_confidence for c in scanned})
