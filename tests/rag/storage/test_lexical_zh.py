"""Chinese lexical matching that no single segmentation decides: character bigrams beside jieba's
words, question words left out of scoring, Traditional and Simplified as one text, a file's
opening line weighted; and the fusion and re-scoring on top (real SQLite FTS5 index, real Chroma,
the real embedding model where sentences are compared)."""

import pytest

from rag.language.terms import QUESTION_WORDS, grams, opening, search_terms, terms, to_simplified
from rag.retrieval.retriever import HybridRetriever, RetrievalConfig, _scaled
from rag.storage.chunk_store import ChromaTarget, ChunkStore
from rag.storage.lexical_sqlite import SqliteLexicalIndex
from tests.rag.retrieval.test_retriever import make_chunk, sources


@pytest.fixture
def index(tmp_path):
    lexical = SqliteLexicalIndex(tmp_path / "lexical.sqlite3")
    yield lexical
    lexical.close()


def add(index, source, *texts, heading=None):
    chunks = [make_chunk(source, i, t) for i, t in enumerate(texts)]
    if heading:
        from dataclasses import replace
        chunks = [replace(c, heading=heading) for c in chunks]
    index.replace_source(source, chunks)
    return chunks


def found(index, question, k=5):
    return [h.source for h in index.search(search_terms(question), k)]


def test_bigrams_overlap_and_a_lone_character_is_its_own_term():
    assert grams("磁盘空间") == ["磁盘", "盘空", "空间"]
    assert grams("用 df 看") == ["用", "看"]
    assert grams("No Chinese here") == []
    assert grams("檔案系統") == ["文件", "件系", "系统"]  # Traditional, read as Simplified


def test_a_word_jieba_cuts_differently_in_the_page_still_matches(index):
    # jieba reads this page's "时不挂起" as 时不挂 + 起: no 挂起 among its words.
    assert "挂起" not in terms("使程序运行时不挂起，不向 tty 输出信息")
    add(index, "nohup.1.md", "使程序运行时不挂起，不向 tty 输出信息")
    add(index, "other.md", "程序运行结束后输出退出状态")
    assert found(index, "程序挂起")[0] == "nohup.1.md"


def test_question_words_are_not_scored():
    for question in ("怎么查看磁盘空间？", "如何查看磁盘空间", "查看磁盘空间的命令是什么？", "磁盘空间怎样查看吗"):
        wanted = search_terms(question)
        assert {"查看", "磁盘", "空间"} <= set(wanted)
        assert not set(wanted) & {"怎么", "如何", "什么", "怎样", "吗", "么查", "间的"}
    assert {"怎么", "如何", "什么", "吗"} <= QUESTION_WORDS
    # Bigrams never straddle a removed question word: 怎么|查看 gives no 么查.
    assert "么查" not in search_terms("到底怎么查看")


def test_a_page_full_of_question_words_does_not_outrank_the_answer(index):
    add(index, "faq.md", "如何如何？怎么怎么？什么什么？为什么？怎样？")
    add(index, "df.1.md", "df 报告文件系统磁盘空间使用情况")
    assert found(index, "怎么查看磁盘空间？") == ["df.1.md"]


@pytest.mark.parametrize("traditional, simplified", [
    ("怎麼查看軟體包裡的檔案", "怎么查看软件包里的文件"),
    ("印表機", "打印机"), ("記憶體不夠", "内存不够"), ("乾燥", "干燥"), ("後臺行程", "后台行程"),
])
def test_traditional_text_reads_as_simplified(traditional, simplified):
    assert to_simplified(traditional) == simplified
    assert terms(traditional) == terms(simplified)


@pytest.mark.parametrize("text", ["怎么查看软件包里的文件", "什么么", "干燥", "文件系统"])
def test_simplified_text_is_left_as_it_is(text):
    assert to_simplified(text) == text  # 么 is not 幺, 文件 is not 文档


def test_either_script_finds_the_other_with_the_same_score(index):
    add(index, "tw.html", "使用 passwd 指令變更使用者的密碼，設定檔在 /etc/login.defs")
    add(index, "cn.md", "用 lpr 把文件送到打印机打印")
    add(index, "noise.md", "网络配置和路由表")
    simplified = index.search(search_terms("怎么修改用户密码"), 3)
    traditional = index.search(search_terms("怎麼修改使用者密碼"), 3)
    assert simplified[0].source == traditional[0].source == "tw.html"
    printer_s = index.search(search_terms("打印机怎么用"), 3)
    printer_t = index.search(search_terms("印表機怎麼用"), 3)
    assert printer_s[0].source == printer_t[0].source == "cn.md"
    assert printer_t[0].bm25 == pytest.approx(printer_s[0].bm25)


def test_a_files_opening_line_counts_for_every_chunk_of_it(index):
    chunks = add(index, "cp.1.md", "CP(1) 用户命令\n\n名称\n\ncp - 复制文件和目录", "-r, --recursive\n递归处理",
                 "--backup 为每个已存在的目标文件创建备份")
    assert opening(chunks) == "CP(1) 用户命令 名称 cp - 复制文件和目录"
    assert opening([make_chunk("sql-copy.html", 0, "COPY\n\nCOPY — copy data between a file and a table")]) == ""
    add(index, "guide.md", "第一章", "偶尔需要复制一下配置", "然后再检查一下")
    # The third chunk of cp.1 says nothing of copying, but its file's opening line does.
    hits = index.search(search_terms("复制目录时创建备份"), 5)
    assert hits[0].source == "cp.1.md"


@pytest.fixture
def world(tmp_path, real_embedder):
    store = ChunkStore(ChromaTarget(tmp_path / "chroma"), "tst", {"embed_model": real_embedder.fingerprint})
    lexical = SqliteLexicalIndex(tmp_path / "lexical.sqlite3")

    def put(source, *texts):
        chunks = [make_chunk(source, i, t) for i, t in enumerate(texts)]
        store.upsert(chunks, real_embedder.embed([c.embedding_text() for c in chunks]))
        lexical.replace_source(source, chunks)

    def retriever(embedder=real_embedder, **config):
        return HybridRetriever(store, lexical, embedder, RetrievalConfig(**{"min_score": 0.2, **config}))

    yield put, retriever
    lexical.close()


def test_score_fusion_and_rank_fusion_both_rank_what_both_sides_agree_on_first(world):
    put, retriever = world
    put("dense.txt", "replica server standby streaming")
    put("lexical.txt", "wal_level setting archive")
    put("both.txt", "replica server standby streaming wal_level")
    for fusion in ("rrf", "score"):
        hits = retriever(fusion=fusion).search("replica server standby streaming wal_level", 3)
        assert sources(hits)[0] == "both.txt", fusion


def test_score_fusion_weighs_the_lexical_side_per_language(world):
    put, retriever = world
    put("zh-dense.md", "检查并修复文件系统错误")  # what the question means, in other words
    put("zh-lexical.md", "fsck 的日志保存在这里")  # the question's rare word, nothing else
    question = "fsck 日志"
    r = retriever(fusion_cjk="score", score_lexical_weight_cjk=0.0)
    dense_first = r.store.query(r.embedder.embed([question])[0], 2)[0].chunk.source
    assert sources(r.search(question, 2))[0] == dense_first  # weight 0: the dense side alone
    strong = retriever(fusion_cjk="score", score_lexical_weight_cjk=5.0).search(question, 2)
    assert sources(strong)[0] == "zh-lexical.md"
    english = retriever(fusion_cjk="score", score_lexical_weight_cjk=5.0, fusion="score",
                        score_lexical_weight=0.0)
    assert sources(english.search(question, 2)) == sources(strong)  # a CJK question: CJK weight


def test_min_max_scaling():
    assert _scaled([2.0, 4.0, 3.0]) == [0.0, 1.0, 0.5]
    assert _scaled([7.0, 7.0]) == [1.0, 1.0]
    assert _scaled([]) == []


def test_rescoring_lifts_the_chunk_whose_sentence_answers(world):
    put, retriever = world
    # Both chunks talk about the launch; only one says what the question asks.
    put("general.md", "The rescue launch. The rescue launch is kept at the harbour. The rescue launch "
                      "is blue. The rescue launch has a crew. The rescue launch is insured.")
    put("answer.md", "Radio. Its radio works on VHF channel 72 at all times.")
    question = "Which VHF channel does the rescue launch use?"
    plain = retriever(rescore_top=0).retrieve(question, 2).hits
    rescored = retriever(rescore_top=5, rescore_weight=2.0).retrieve(question, 2).hits
    assert sources(rescored)[0] == "answer.md"
    assert set(sources(plain)) == set(sources(rescored))  # re-ordered, nothing added or lost


class Recording:
    """The real embedder, recording what it is asked to embed."""

    def __init__(self, inner):
        self.inner, self.embedded = inner, []

    def embed(self, texts, kind="passage"):
        self.embedded.extend(texts)
        return self.inner.embed(texts, kind)

    def __getattr__(self, name):
        return getattr(self.inner, name)


def test_rescoring_off_leaves_the_order_and_never_embeds_sentences(world, real_embedder):
    put, retriever = world
    put("a.md", "alpha beta gamma. delta epsilon.")
    put("b.md", "alpha beta. zeta eta theta.")
    off, on = Recording(real_embedder), Recording(real_embedder)
    plain = retriever(embedder=off, rescore_top=10, rescore_weight=0.0).search("alpha beta", 2)
    retriever(embedder=on, rescore_top=10, rescore_weight=1.0).search("alpha beta", 2)
    assert off.embedded == ["alpha beta"]  # the question only
    assert "zeta eta theta." in on.embedded  # re-scoring reads the candidates' sentences
    assert sources(plain) == sources(retriever(rescore_top=0).search("alpha beta", 2))
