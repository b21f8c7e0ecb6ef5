"""The shared character classes and sentence splitter, and that their users kept their behaviour."""

from rag.language.terms import terms
from rag.language.text import is_cjk, sentence_spans


def test_sentence_spans():
    text = "First one. Second one!\nThird 第三句。第四句？"
    assert [text[s:e] for s, e in sentence_spans(text)] == [
        "First one.", "Second one!", "Third 第三句。", "第四句？"]


def test_sentence_spans_keep_numbers_and_file_names_whole():
    text = "It makes 4.2 MW. See mongod.conf now."
    assert [text[s:e] for s, e in sentence_spans(text)] == ["It makes 4.2 MW.", "See mongod.conf now."]


def test_is_cjk_counts_chinese_and_japanese_but_not_korean():
    assert is_cjk("怎么查看？") and is_cjk("ログは十年間保存されます") and is_cjk("豈更車 abc")
    assert not is_cjk("한국어 질문입니다") and not is_cjk("How do I use pg_dump?") and not is_cjk("")


def test_lexical_terms_are_unchanged():
    # Pinned: a change here re-indexes everyone (and needs TERMS_VERSION bumped, as version 3
    # did when Traditional characters began to be read as Simplified (4: English files have no
    # opening-line column): the compatibility
    # ideographs 豈 and 車 are Traditional ones).  Compatibility ideographs go to jieba, Hangul
    # to the word splitter.
    from rag.language.terms import TERMS_VERSION

    assert TERMS_VERSION == "4"
    assert terms("豈更車 한국어 텍스트 テスト max_connections 北京大学") == [
        "岂", "更车", "한국어", "텍스트", "テ", "ス", "ト", "max_connections", "max", "connections",
        "北京", "大学", "北京大学"]
