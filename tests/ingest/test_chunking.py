import re

import pytest

from ingest.chunking import Chunker, split_sentences
from ingest.parsers import ParsedDocument

ENGLISH = " ".join(
    f"Sentence number {i} explains how the frobnicator calibrates its sensor array after maintenance."
    for i in range(120))
CHINESE = "".join(f"第{i}条规定员工在完成设备维护以后必须重新校准传感器阵列并记录结果。" for i in range(150))


@pytest.fixture(scope="module")
def chunker(real_embedder):
    return Chunker(real_embedder.count_tokens, real_embedder.max_tokens, chunk_tokens=120,
                   overlap_tokens=20)


def doc_of(text, heading="Calibration"):
    doc = ParsedDocument()
    doc.add(text, None, heading)
    return doc.finish()


def test_split_sentences_is_lossless():
    text = "One. Two!  Three? 四。五！六，七\n八"
    assert "".join(split_sentences(text)) == text
    assert len(split_sentences(text)) == 8


# Chinese, Korean (spaced and run together), English, Japanese and compatibility ideographs.
MIXED = "".join(f"第{i}条：维护以后必须重新校准传感器阵列并记录结果，정비 후에는 센서를 다시 보정하고 결과를 기록해야 합니다. "
                f"Rule {i}: the log is kept for ten years; ログは十年間保存されます。"
                f"한국어문장은띄어쓰기없이도길게이어질수있습니다 豈更車\n" for i in range(6))


def test_mixed_script_chunk_boundaries_are_unchanged(chunker):
    # Pinned from before the CJK character classes moved to rag.language.text: new boundaries would
    # mean new chunk ids, and every user re-indexing.  (Hangul counts as CJK for the overlap cut
    # here.)
    spans = [(c.start, c.end) for c in chunker.chunk("a.txt", "h", doc_of(MIXED))]
    assert spans == [(0, 110), (70, 195), (180, 301), (281, 413), (362, 524), (484, 609), (594, 715),
                     (695, 827)]


@pytest.mark.parametrize("text", [ENGLISH, CHINESE], ids=["english", "chinese"])
def test_chunks_fit_the_embedding_window_and_overlap(chunker, real_embedder, text):
    doc = doc_of(text)
    chunks = chunker.chunk("a.txt", "h", doc)
    assert len(chunks) > 5
    for chunk in chunks:
        assert doc.text[chunk.start:chunk.end] == chunk.text  # offsets point at the text
        assert real_embedder.count_tokens(chunk.text) <= 120 + 8  # join slack of a few tokens
        assert real_embedder.count_tokens(chunk.embedding_text()) <= real_embedder.max_tokens - 2
    for before, after in zip(chunks, chunks[1:]):
        assert after.start < before.end  # overlap
    assert chunks[0].start == 0 and chunks[-1].end == len(doc.text)


def test_english_chunks_never_cut_a_word(chunker):
    doc = doc_of(ENGLISH)
    for chunk in chunker.chunk("a.txt", "h", doc):
        assert chunk.start == 0 or not doc.text[chunk.start - 1].isalnum()
        assert chunk.end == len(doc.text) or not doc.text[chunk.end].isalnum()


def test_chinese_chunks_end_at_punctuation(chunker):
    doc = doc_of(CHINESE)
    for chunk in chunker.chunk("a.txt", "h", doc)[:-1]:
        assert re.search(r"[。，]$", chunk.text), chunk.text[-5:]


def test_unchanged_passages_keep_their_ids_when_the_file_changes(chunker):
    paragraphs = [f"Paragraph {i}. " + "Words about topic %d. " % i * 12 for i in range(8)]
    before = chunker.chunk("a.txt", "h1", doc_of("\n\n".join(paragraphs)))
    paragraphs[5] = "A completely rewritten paragraph about something else entirely."
    after = chunker.chunk("a.txt", "h2", doc_of("\n\n".join(paragraphs)))
    shared = {c.chunk_id for c in before} & {c.chunk_id for c in after}
    assert len(shared) >= len(before) - 3  # only the chunks around paragraph 5 change


def test_same_text_twice_gets_distinct_ids(chunker):
    doc = ParsedDocument()
    doc.add("Same paragraph.", None, "A")
    doc.add("Same paragraph.", None, "B")
    chunks = chunker.chunk("a.txt", "h", doc.finish())
    assert len({c.chunk_id for c in chunks}) == 2
