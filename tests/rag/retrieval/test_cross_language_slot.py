"""RetrievalConfig.cross_language_slot, with multilingual-e5-small over a real Chroma: a Chinese
question with English words in it reaches the English page those words name, in its reserved
place, judged by the question as asked; the question's own ranking keeps the places before it."""

import pytest

from tests.rag.retrieval.test_retriever import one_chunk_files

ENGLISH = ("en/select.txt", "With FOR UPDATE, SELECT locks the rows it returns as though for an "
           "update: other transactions that try to UPDATE, DELETE or SELECT FOR UPDATE those rows "
           "wait until the current transaction ends.")
# Chinese passages about orders and locks: the model rates them above the English page.
CHINESE = [("zh/orders.txt", "订单表记录每一笔订单，抢单时多个会话会同时修改同一行订单。"),
           ("zh/locks.txt", "锁用于保护共享数据，会话在修改订单行之前先加锁，其他会话需要等待。"),
           ("zh/sessions.txt", "每个会话都有自己的事务，事务提交以后其他会话才能看到修改。"),
           ("zh/apt.txt", "apt 是 Debian 的软件包管理工具，可以安装和删除软件包。")]
QUESTION = "抢单的时候用 SELECT ... FOR UPDATE 锁订单行，其他会话会怎么样？"


@pytest.fixture
def bilingual(tmp_path, e5_embedder):
    return one_chunk_files(tmp_path, e5_embedder, [ENGLISH, *CHINESE])


def test_the_english_page_a_chinese_question_names_gets_its_place(bilingual, e5_embedder):
    store, retriever = bilingual
    plain = retriever(cross_language_slot=False).retrieve(QUESTION, 2).hits
    slotted = retriever(cross_language_slot=True).retrieve(QUESTION, 2).hits
    assert "en/select.txt" not in [h.chunk.source for h in plain]
    # the question's best stays first; the English page takes the reserved place (the 5th, or
    # the last when fewer are asked for)
    assert [h.chunk.source for h in slotted] == [plain[0].chunk.source, "en/select.txt"]
    # judged by the question as asked: its own cosine, not the cosine to its English words
    vector = e5_embedder.embed([QUESTION], "query")[0]
    page = store.vectors([slotted[1].chunk.chunk_id])[slotted[1].chunk.chunk_id]
    assert abs(slotted[1].score - sum(a * b for a, b in zip(vector, page))) < 1e-5


def test_nothing_moves_without_latin_words_or_when_the_page_is_already_there(bilingual):
    _, retriever = bilingual
    no_latin = "抢单的时候锁订单行，其他会话会怎么样？"
    assert ([h.chunk.chunk_id for h in retriever(cross_language_slot=True).retrieve(no_latin, 5).hits]
            == [h.chunk.chunk_id for h in retriever(cross_language_slot=False).retrieve(no_latin, 5).hits])
    everything = retriever(cross_language_slot=True).retrieve(QUESTION, 10).hits
    assert sorted(h.chunk.source for h in everything) == sorted(s for s, _ in [ENGLISH, *CHINESE])
    # an English question is left as it is (language_offset is what reaches across for it)
    english = "what does SELECT FOR UPDATE lock"
    assert ([h.chunk.chunk_id for h in retriever(cross_language_slot=True).retrieve(english, 2).hits]
            == [h.chunk.chunk_id for h in retriever(cross_language_slot=False).retrieve(english, 2).hits])
