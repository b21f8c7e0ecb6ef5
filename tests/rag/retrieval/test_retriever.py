"""Hybrid retrieval: fusion, Chinese lexical matching, filters, duplicates, crowding, widening."""

import pytest

from ingest.chunking import chunk_id
from rag.core.shapes import sha256_text
from rag.core.shapes import Chunk, Hit
from rag.language.terms import names, query_terms, terms
from rag.retrieval.retriever import HybridRetriever, RetrievalConfig, SearchFilter
from rag.retrieval.sentence_scores import stitch
from rag.storage.chunk_store import ChromaTarget, ChunkStore
from rag.storage.lexical_sqlite import SqliteLexicalIndex
from tests.fakes import FakeEmbedder


def make_chunk(source, ordinal, text, start=None):
    start = ordinal * 1000 if start is None else start
    digest = sha256_text(text)
    return Chunk(chunk_id(source, digest, ordinal), source, text, start, start + len(text), None,
                 None, digest, ordinal, "f")


def one_chunk_files(tmp_path, embedder, files):
    """A real Chroma and lexical index holding each (source, text) as one chunk, and a factory
    of retrievers over them with the given RetrievalConfig values."""
    store = ChunkStore(ChromaTarget(tmp_path / "chroma"), "tst", {"embed_model": embedder.fingerprint})
    lexical = SqliteLexicalIndex(tmp_path / "lexical.sqlite3")
    for source, text in files:
        chunks = [make_chunk(source, 0, text)]
        store.upsert(chunks, embedder.embed([c.embedding_text() for c in chunks]))
        lexical.replace_source(source, chunks)

    def retriever(**config):
        return HybridRetriever(store, lexical, embedder, RetrievalConfig(**config))

    return store, retriever


@pytest.fixture
def world(tmp_path):
    """A real Chroma and lexical index over a few files, with the deterministic fake embedder."""
    embedder = FakeEmbedder()
    store = ChunkStore(ChromaTarget(tmp_path / "chroma"), "tst", {"embed_model": embedder.fingerprint})
    lexical = SqliteLexicalIndex(tmp_path / "lexical.sqlite3")

    def add(source, *texts):
        chunks = [make_chunk(source, i, t) for i, t in enumerate(texts)]
        store.upsert(chunks, embedder.embed([c.embedding_text() for c in chunks]))
        lexical.replace_source(source, chunks)
        return chunks

    def retriever(**config):
        return HybridRetriever(store, lexical, embedder, RetrievalConfig(**{"min_score": 0.2, **config}))

    return add, retriever, store, lexical


def sources(hits):
    return [h.chunk.source for h in hits]


def test_terms_segment_chinese_and_keep_identifiers():
    assert {"软件包", "文件"} <= set(terms("怎么查看软件包里的文件"))
    assert {"max_connections", "max", "connections"} <= set(terms("Set max_connections to 200"))
    assert query_terms("How do I set the work_mem?") == ["set", "work_mem", "work", "mem"]
    assert "怎么" not in query_terms("怎么查看软件包")


def test_names_are_identifiers_and_rare_proper_nouns_not_capitalised_common_words():
    rare = {"patroni", "ubuntu", "netplan", "kerrowan", "vhf"}  # as the embedding model's vocabulary says

    def common(word):
        return word not in rare

    assert names("How do I query the pg_stat_io view in PostgreSQL?", common) == ["pg_stat_io", "postgresql"]
    assert names("What goes in mongod.conf? And ORA-01555, deb822?", common) == ["mongod.conf", "ora-01555", "deb822"]
    assert names("What VHF channel does the rescue launch use?", common) == ["vhf"]
    assert names("Where is the lifeboat kept? Ask the harbour master.", common) == []  # plain words
    assert names("Is the boathouse open on Christmas Day?", common) == []  # capitalised, but common
    assert names("Is it OK to drill on a Sunday? Is there a TV?", common) == []  # acronyms, but common
    assert names("How do I configure Patroni failover?", common) == ["patroni"]
    assert names("Where is Kerrowan?", common) == ["kerrowan"]
    assert names("Ubuntu 上用 netplan 怎么配置网卡？", common) == ["ubuntu", "netplan"]  # Latin in Chinese


def test_the_names_rule_is_the_same_whatever_the_embedding_model(real_embedder, e5_embedder):
    """A capitalised common word is no name with either model: multilingual-e5's tokenizer splits
    "Christmas" in two, and the rule no longer asks it (rag/language/vocabulary.py)."""
    question = "Is the boathouse open on Christmas Monday, and does Patroni run there?"
    for embedder in (real_embedder, e5_embedder):
        lexical = type("Nothing", (), {"absent": lambda self, words: list(words)})()
        retriever = HybridRetriever(None, lexical, embedder, RetrievalConfig())
        assert retriever.unknown_names(question) == ["patroni"]


def test_a_question_naming_something_no_document_contains_is_refused(world):
    add, retriever, _, lexical = world
    add("monitoring.txt", "The pg_stat_activity view shows one row per server process.",
        "Edit pg_hba.conf to allow the standby; see error ORA-01555 notes.")
    r = retriever(min_score=-1.0)  # every passage would pass the similarity bar
    assert r.unknown_names("How do I query the pg_stat_io view?") == ["pg_stat_io"]
    assert not any(h.relevant for h in r.search("How do I query the pg_stat_io view?", 3))
    assert r.unknown_names("Which line of pg_hba.conf explains ORA-01555?") == []  # parts in one chunk
    assert any(h.relevant for h in r.search("What does pg_stat_activity show?", 3))
    assert retriever(min_score=-1.0, refuse_unknown_names=False).search("the pg_stat_io view", 3)[0].relevant


def test_fusion_ranks_a_passage_both_sides_agree_on_first(world):
    add, retriever, *_ = world
    add("dense.txt", "replica server standby streaming")
    add("lexical.txt", "wal_level setting archive")
    add("both.txt", "replica server standby streaming wal_level")
    hits = retriever().search("replica server standby streaming wal_level", 3)
    assert sources(hits)[0] == "both.txt"
    assert set(sources(hits)) == {"both.txt", "dense.txt", "lexical.txt"}


def test_file_support_never_lifts_a_chunk_above_one_that_beats_it_on_both_sides(world):
    """A long handbook mentioning the town in many places gets file support on every chunk; the
    one-line note that is the best match both by meaning and by words still comes first."""
    add, retriever, *_ = world
    add("handbook.md", *[f"Section {n}: the cooperative in Kerrowan keeps boats and a harbour "
                         f"office; members meet in Kerrowan on day {n}." for n in range(8)])
    add("ferry.txt", "The ferry to Kerrowan leaves at 07:40 from pier 3.")
    question = "When does the ferry to Kerrowan leave?"
    assert sources(retriever(file_support=0.6).search(question, 3))[0] == "ferry.txt"
    # Where neither beats the other on both sides, support still decides between them.
    add("ferry-notes.md", "Kerrowan harbour notes.", "Ferry tickets: Kerrowan office.",
        "The ferry crosses to Kerrowan twice a day.")
    ranked = retriever(file_support=0.6, max_per_file=3).search("ferry Kerrowan", 6)
    assert sources(ranked)[:3].count("ferry-notes.md") >= 2


def test_an_error_in_the_keyword_search_reaches_the_caller(world):
    """The keyword search runs on a thread of its own beside the vector search: its failure is
    the search's failure, not an empty lexical side."""
    add, retriever, _, lexical = world
    add("a.txt", "replica server standby streaming")
    lexical.close()
    with pytest.raises(Exception, match="closed database"):
        retriever().search("replica server", 3)


def test_lexical_side_finds_rare_exact_terms_the_dense_side_misses(world):
    add, retriever, *_ = world
    for i in range(30):
        add(f"noise{i}.txt", f"general database tuning advice number {i} about memory and disks")
    add("target.txt", "the parameter effective_io_concurrency controls prefetching")
    hits = retriever(lexical_weight=1.0).search("what does effective_io_concurrency do for memory", 3)
    assert "target.txt" in sources(hits)


def test_chinese_question_finds_chinese_passage(ingested):
    hits = ingested.retriever().search("员工每年有多少天带薪年假？", 3)
    assert hits[0].chunk.source == "legacy/gbk.txt" and hits[0].relevant
    hits = ingested.retriever().search("差旅費用要在幾天內申請報銷？", 3)
    assert hits[0].chunk.source == "legacy/big5.txt" and hits[0].relevant


def test_duplicates_across_files_are_collapsed(world):
    add, retriever, *_ = world
    add("a/policy.txt", "Visitors must sign in at the front desk before entering the lab")
    add("b/policy-copy.txt", "Visitors must sign in at the front desk before entering the lab")
    add("c/other.txt", "Lab visitors wear safety glasses")
    hits = retriever().search("must visitors sign in at the front desk", 3)
    assert len([s for s in sources(hits) if "policy" in s]) == 1


def test_one_file_does_not_crowd_out_the_others_unless_clearly_best(world):
    _, retriever, *_ = world
    r = retriever(max_per_file=1)

    def candidates(*scored):
        return [(Hit(make_chunk(src, i, f"text {src} {i}"), 0.5), {f"w{src}{i}"}, score)
                for i, (src, score) in enumerate(scored)]

    close = r._select(candidates(("big", 1.0), ("big", 0.9), ("small", 0.8), ("other", 0.7)), 3)
    assert sources(close) == ["big", "small", "other"]
    clear = r._select(candidates(("big", 1.0), ("big", 0.9), ("small", 0.5), ("other", 0.4)), 3)
    assert sources(clear) == ["big", "big", "small"]
    only = r._select(candidates(("big", 1.0), ("big", 0.9)), 3)
    assert sources(only) == ["big", "big"]  # with nothing else to show, the file fills the list


@pytest.mark.parametrize("path, source, expected", [
    ("reports/", "reports/2024/turbine.pdf", True),  # no glob characters: a prefix
    ("reports/", "old-reports/turbine.pdf", False),
    ("finance/**/*.pdf", "finance/a.pdf", True),  # ** is zero or more folders
    ("finance/**/*.pdf", "finance/x/y/a.pdf", True),
    ("finance/**/*.pdf", "finance/x/a.docx", False),
    ("*.pdf", "a.pdf", True),
    ("*.pdf", "sub/a.pdf", False),  # * stays within one folder
    ("legacy/*.txt", "legacy/old/gbk.txt", False),
    ("**/*.pdf", "a.pdf", True),
    ("**/*.pdf", "x/y/z/a.pdf", True),
    ("reports/*.pdf", "reports/Turbine.PDF", False),  # case-sensitive, as the prefix is
    ("Reports/", "reports/turbine.pdf", False),
    ("reports/turbine-?.pdf", "reports/turbine-2.pdf", True),
    ("reports/turbine-[0-9].pdf", "reports/turbine-x.pdf", False),
])
def test_path_filter_globs_respect_folders(path, source, expected):
    assert SearchFilter(path=path).matches(source) is expected


@pytest.mark.parametrize("filt, expected", [
    (SearchFilter(path="reports/"), {"reports/turbine.pdf"}),
    (SearchFilter(path="legacy/*.txt"), {"legacy/gbk.txt", "legacy/big5.txt", "legacy/utf16.txt"}),
    (SearchFilter(types=("pdf", ".docx")), {"reports/turbine.pdf", "specs.docx"}),
    (SearchFilter(path="nothing/"), set()),
])
def test_filters_restrict_both_sides(ingested, filt, expected):
    hits = ingested.retriever().search("maximum load power emergency valve parking leave", 10, filt)
    assert set(sources(hits)) <= expected
    if expected:
        assert hits


def test_widening_adds_neighbours_and_never_repeats_text(world):
    add, retriever, *_ = world
    texts = [f"Paragraph {i} of the manual." for i in range(6)]
    chunks = add("manual.txt", *texts)
    r = retriever()
    passages = r.widen([Hit(chunks[2], 0.9), Hit(chunks[3], 0.8)], 1)
    assert len(passages) == 1  # the two hits meet, so they merge
    assert [p for p in texts if p in passages[0].text] == texts[1:5]
    assert passages[0].text.count("Paragraph 2") == 1


def test_stitch_joins_overlapping_chunks_by_offset():
    a = Chunk("a", "f", "one two three", 0, 13, None, None, "h", 0, "f")
    b = Chunk("b", "f", "three four", 8, 18, None, None, "h", 1, "f")
    c = Chunk("c", "f", "six", 30, 33, None, None, "h", 2, "f")
    assert stitch([b, a, c]) == "one two three four\n\nsix"


def test_ingest_keeps_the_lexical_index_in_sync(tmp_path, data_dir, real_embedder):
    from tests.workspace import Workspace

    ws = Workspace.make(tmp_path, embedder=real_embedder)
    ws.indexer.ingest()
    assert ws.lexical.count() == ws.store.count()
    handbook = data_dir / "handbook.md"
    handbook.write_text(handbook.read_text().replace("reimbursed", "refunded"), encoding="utf-8")
    (data_dir / "legacy" / "gbk.txt").unlink()
    ws.indexer.ingest()
    assert ws.lexical.count() == ws.store.count()
    assert ws.lexical.sources() == ws.store.sources()
    assert ws.lexical.search(["reimbursed"], 5) == []
    assert ws.lexical.search(["refunded"], 5)
    assert ws.lexical.search(["年假"], 5) == []


def test_a_lost_lexical_index_is_rebuilt_by_the_next_ingest(tmp_path, data_dir, real_embedder):
    from tests.workspace import Workspace

    ws = Workspace.make(tmp_path, embedder=real_embedder)
    ws.indexer.ingest()
    ws.lexical.clear()
    report = ws.indexer.ingest()
    assert report.chunks_embedded == 0 and ws.lexical.count() == ws.store.count()


def test_chinese_questions_lean_on_the_lexical_side():
    from rag.language.text import is_cjk

    assert is_cjk("怎么查看软件包里装了哪些文件？") and is_cjk("apt 怎么锁定软件包版本？")
    assert not is_cjk("How do I use pg_dump?") and not is_cjk("")


def test_vector_hits_carry_texts_only_when_asked_and_search_reads_them_from_the_lexical_index(world):
    add, retriever, store, _ = world
    [kept] = add("ferry.txt", "The ferry to Kerrowan leaves at 07:40 from pier two.")
    vector = FakeEmbedder().embed(["ferry Kerrowan pier"])[0]
    bare, full = store.query(vector, 1)[0], store.query(vector, 1, with_text=True)[0]
    assert bare.chunk.text == "" and full.chunk.text == kept.text
    assert bare.chunk.chunk_id == full.chunk.chunk_id == kept.chunk_id
    assert (bare.chunk.source, bare.chunk.start, bare.score) == ("ferry.txt", kept.start, full.score)
    assert retriever().search("When does the ferry to Kerrowan leave?", 1)[0].chunk.text == kept.text


def test_an_expansion_ranks_the_passage_but_relevance_and_standing_stay_the_questions(world):
    """The chat model's names (rag.retrieval.expansion) find the page the question's own words miss;
    the hits' cosines, relevance and the dense standing the evidence test reads are the
    question's, as without the expansion."""
    add, retriever, *_ = world
    add("head.1", "head - 输出文件的开始部分 print the first lines of files")
    for name, text in [("cat.1", "cat - 连接文件并在标准输出上显示 只看 文件 内容"),
                       ("wc.1", "wc - 输出文件中的行数 统计 每个 文件 行"),
                       ("less.1", "less - 分页 查看 文件 的 内容 一屏")]:
        add(name, text)
    question = "只看 文件 最前面 20 行"
    plain = retriever().retrieve(question, 3)
    expanded = retriever().retrieve(question, 3, expansion="head -n 20 first lines")
    assert sources(plain.hits)[0] != "head.1"
    assert sources(expanded.hits)[0] == "head.1"
    assert (expanded.dense_best, expanded.dense_z) == (plain.dense_best, plain.dense_z)
    embedder = FakeEmbedder()
    own = embedder.embed([question])[0]
    for hit in expanded.hits:
        cosine = sum(a * b for a, b in zip(own, embedder.embed([hit.chunk.embedding_text()])[0]))
        assert hit.score == pytest.approx(cosine, abs=1e-6)
    assert not expanded.hits[0].relevant  # "head" is the model's word, not the question's
