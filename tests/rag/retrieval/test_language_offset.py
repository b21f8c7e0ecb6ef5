"""Searching each script apart (RetrievalConfig.language_offset), with multilingual-e5-small over a
real Chroma: an English question reaches the Chinese passage that answers it."""

import pytest

from tests.rag.retrieval.test_retriever import one_chunk_files

ANSWER = "rmdir 命令用于删除空目录；目录里还有文件时，它会报错并拒绝删除。"
# Closer to the question than the answer is, by this model's cosine (0.79-0.84 against 0.81), and
# without its words, so only the dense side decides.
ENGLISH = ["mkdir creates a new folder, and with -p also its missing parents.",
           "ls lists the files in a folder, one per line with -1.",
           "cp copies files; with -r it copies whole folders.",
           "mv moves or renames files and folders.",
           "rm deletes files; with -r it deletes folders and everything in them.",
           "chmod changes who may read, write or enter a folder."]


@pytest.fixture
def bilingual(tmp_path, e5_embedder):
    files = [("zh/rmdir.txt", ANSWER)] + [(f"en/{t.split()[0]}.txt", t) for t in ENGLISH]
    return one_chunk_files(tmp_path, e5_embedder, files)


def test_chunks_are_tagged_with_their_script_and_searched_by_it(bilingual, e5_embedder):
    store, _ = bilingual
    assert store.tags_scripts
    vector = e5_embedder.embed(["how do I remove an empty directory"], "query")[0]
    assert {h.chunk.source for h in store.query(vector, 10, script="cjk")} == {"zh/rmdir.txt"}
    assert {h.chunk.source for h in store.query(vector, 10, script="other")} == {
        f"en/{t.split()[0]}.txt" for t in ENGLISH}
    assert {h.chunk.source for h in store.query(vector, 10, ["zh/rmdir.txt"], script="other")} == set()


def test_an_english_question_reaches_the_chinese_answer_only_with_the_offset(bilingual):
    _, retriever = bilingual
    question = "how do I remove an empty directory"
    plain = retriever(language_offset=0.0).retrieve(question, 3)
    offset = retriever(language_offset=0.05).retrieve(question, 3)
    assert "zh/rmdir.txt" not in [h.chunk.source for h in plain.hits]
    assert offset.hits[0].chunk.source == "zh/rmdir.txt"
    # the hit keeps its own cosine: the relevance bar and the evidence test read the question's
    own = {h.chunk.chunk_id: h.score for h in plain.hits}
    assert all(h.score < 1.0 for h in offset.hits)
    assert all(abs(h.score - own[h.chunk.chunk_id]) < 1e-6 for h in offset.hits if h.chunk.chunk_id in own)
