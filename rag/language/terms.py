"""Search terms: what the keyword index (rag/storage/lexical_sqlite.py,
rag/storage/lexical_postgres.py) stores and looks up, and what the answer checks compare
(question-word coverage, names the documents must contain).

Chinese and Japanese runs are segmented with jieba (search mode, so both words and their parts
match) after Traditional text is written in Simplified characters and mainland words
(`to_simplified`, from OpenCC's dictionaries), and also cut into overlapping character bigrams
(`grams()`); other text is split into words, with identifiers like `max_connections` kept whole
*and* split.  A question's search terms (`search_terms()`) leave out question words (怎么, 如何,
什么, 吗…).  English terms are compared by their Porter stems.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import Callable, Iterable, Sequence

from rag.core.shapes import Chunk
from rag.language.text import CJK_RUN

TERMS_VERSION = "4"  # bump when terms() or grams() change: the index is then rebuilt from the chunks

_WORD = re.compile(r"[^\W_]+(?:_[^\W_]+)*")

# Words that carry no topic: dropped from questions (documents keep them; BM25 discounts them).
STOPWORDS = frozenset("""
a about after all also am an and any are as at be been before being but by can could did do does
doing for from had has have having how i if in into is it its me my no not of on or our should so
some such than that the their them then there these they this those to too use used using was we
were what when where which while who why will with would you your want need get make way tell
explain show find give know please
的 了 和 与 或 是 在 有 我 你 他 她 它 们 这 那 个 吗 呢 吧 啊 么 怎么 怎样 如何 什么 哪些 哪个 为什么 是否
可以 能 能否 应该 需要 要 想 一个 一下 里 中 上 下 把 被 用 使用 对 给 从 到 就 都 也 还 该 请问 请 时候
""".split())

# How a question asks, not what it asks about: never scored (Simplified: questions are converted).
QUESTION_WORDS = frozenset("""
如何 怎样 怎么 怎么办 怎么样 怎么回事 怎么弄 咋 咋办 咋样 咋弄 啥 什么 什么样 为什么 为啥 干嘛 干什么 哪 哪个 哪些 哪里 哪儿 哪一个
吗 呢 吧 啊 呀 么 嘛 多少 是否 能否 能不能 可不可以 有没有 是不是 要不要 会不会 该 应该 请问 请 想 想要 我 我们
你 一下 到底 办法 方法 知道 告诉 可以 能 需要 要 得 的 了 是 有 在 还 就 都 也 用 把 给 再 又 吧 一 个
""".split())


def _load_jieba():
    import logging

    import jieba

    jieba.setLogLevel(logging.WARNING)
    return jieba


def _opencc_table(name: str) -> dict[str, str]:
    """One of OpenCC's dictionaries (shipped in its PyPI package): key -> first candidate."""
    import opencc

    path = Path(opencc.__file__).parent / "dictionary" / f"{name}.txt"
    table = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        key, _, values = line.partition("\t")
        if key and values:
            table[key] = values.split()[0]
    return table


@functools.lru_cache(maxsize=1)
def _simplifier() -> tuple[re.Pattern, re.Pattern, dict[str, str], dict[int, str]]:
    phrases = _opencc_table("TWPhrasesRev")  # Taiwan words -> mainland ones (in Traditional)
    characters = _opencc_table("TSCharacters")  # Traditional -> Simplified characters
    variants = {**_opencc_table("HKVariantsRev"), **_opencc_table("TWVariantsRev")}
    simplified = _opencc_table("STCharacters")  # its keys are Simplified characters
    chars: dict[int, str] = {}
    for key in {**characters, **variants}:
        if len(key) == 1:  # a regional variant is first made the standard Traditional character
            standard = variants.get(key, key)
            value = "".join(characters.get(ch, ch) for ch in standard)
            if value != key:
                chars[ord(key)] = value
    # Characters only Traditional text uses (么 and 干 are Simplified too: not these).
    traditional = "".join(sorted(chr(c) for c in chars if chr(c) not in simplified))
    marker = re.compile(f"[{re.escape(traditional)}]")
    pattern = re.compile("|".join(sorted(map(re.escape, phrases), key=len, reverse=True)))
    return marker, pattern, phrases, chars


def to_simplified(text: str) -> str:
    """A run of Chinese in Simplified characters and mainland words (OpenCC's Taiwan phrases,
    then its Traditional -> Simplified characters), so that both scripts index and search alike.
    Only a run with a character of Traditional text alone is converted: Simplified text comes
    back unchanged (converting it would turn 么 into 幺, 文件 into 文档)."""
    marker, pattern, phrases, chars = _simplifier()
    if not marker.search(text):
        return text
    return pattern.sub(lambda m: phrases[m.group()], text).translate(chars)


def terms(text: str) -> list[str]:
    """Index terms of a text, in order (duplicates kept: BM25 counts them)."""
    out: list[str] = []
    pos = 0
    for match in CJK_RUN.finditer(text):
        out.extend(_word_terms(text[pos:match.start()]))
        out.extend(w for w in _load_jieba().cut_for_search(to_simplified(match.group())) if w.strip())
        pos = match.end()
    out.extend(_word_terms(text[pos:]))
    return out


def grams(text: str) -> list[str]:
    """Overlapping character bigrams of every Chinese/Japanese run (a run of one character is
    itself), in Simplified characters: matches that survive any word segmentation."""
    out: list[str] = []
    for match in CJK_RUN.finditer(text):
        run = to_simplified(match.group())
        out.extend([run] if len(run) == 1 else [run[i:i + 2] for i in range(len(run) - 1)])
    return out


def _word_terms(text: str) -> list[str]:
    out: list[str] = []
    for word in _WORD.findall(text.lower()):
        out.append(word)
        if "_" in word:
            out.extend(part for part in word.split("_") if part)
    return out


def query_terms(question: str) -> list[str]:
    """Distinct non-stopword terms of a question."""
    return list(dict.fromkeys(t for t in terms(question) if t not in STOPWORDS))


# Query bigrams: "across" jieba's word boundaries (every pair of a stretch between question words
# and stopwords) or only "within" its words (a word of three characters or more gives its pairs).
QUERY_GRAMS = "across"


def search_terms(question: str, query_grams: str | None = None) -> list[str]:
    """What a question is searched by in the lexical index: its terms (query_terms) less the
    question words, and in Chinese the bigrams of each stretch between question words and
    stopwords ("怎么查看磁盘空间" -> 查看, 磁盘, 空间 and 看磁, 盘空), or of each word
    (QUERY_GRAMS "within": 编辑器 -> 编辑, 辑器, which a page where jieba cut 文本编辑 + 器 has)."""
    within = (query_grams or QUERY_GRAMS) == "within"
    out = [t for t in query_terms(question) if t not in QUESTION_WORDS]
    if (query_grams or QUERY_GRAMS) == "none":
        return out
    for match in CJK_RUN.finditer(question):
        stretch = ""
        for word in list(_load_jieba().cut(to_simplified(match.group()))) + [""]:
            if word and word not in QUESTION_WORDS and word not in STOPWORDS:
                if within:
                    out.extend(word[i:i + 2] for i in range(len(word) - 1))
                else:
                    stretch += word
                continue
            if len(stretch) >= 2:
                out.extend(stretch[i:i + 2] for i in range(len(stretch) - 1))
            stretch = ""
    return list(dict.fromkeys(out))


def opening(chunks: Sequence[Chunk]) -> str:
    """A file's opening line(s): the first three non-empty lines of its first chunk, at most 160
    characters ("LS(1) ... / 名称 / ls - 列出目录内容"; a chapter's number and title), for a file
    whose opening has Chinese or Japanese in it; "" otherwise.  Weighed on the English manual it
    cost the top hit (and lengthens every chunk BM25 normalises by): English files keep the two
    columns they had, and rank as before."""
    if not chunks:
        return ""
    first = min(chunks, key=lambda c: c.ordinal)
    lines = [line.strip() for line in first.text.splitlines() if line.strip()][:3]
    text = " ".join(lines)[:160]
    return text if CJK_RUN.search(text) else ""


_LATIN_TOKEN = re.compile(r"[A-Za-z][\w.+-]*[A-Za-z0-9]|[A-Za-z]")


def names(question: str, common: Callable[[str], bool] = lambda word: True) -> list[str]:
    """The question's specific names, which the documents must contain for it to be answerable:
    identifiers (`pg_stat_io`, `deb822`, `mongod.conf`, `v2.1`), CamelCase (`BitLocker`),
    acronyms that are not common words (`SSO`, not `OK`), capitalised words that are not common
    words (`Patroni`; `common(word)` tells, e.g. from the embedding model's vocabulary), and in a
    question with Chinese in it any Latin word that is not a common one (`netplan`).  A
    capitalised common word ("Christmas", "Monday") is not a name, and ordinary words are left
    out: a user's paraphrase ("lifeboat" for "rescue launch") must not count as a subject the
    documents lack.  Chinese words are left out too, as colloquial ones
    are often absent from formal documents."""
    mixed = bool(CJK_RUN.search(question))
    out = []
    for match in _LATIN_TOKEN.finditer(question):
        word = match.group()
        identifier = any(ch.isdigit() or ch in "_.+" for ch in word.strip(".+-"))
        # CamelCase (BitLocker) is a name; an acronym only when it is not a common word as well
        # ("Is it OK to…", "TV", "US").
        camel = any(ch.isupper() for ch in word[1:]) and not word.isupper()
        rare = not common(word.lower())
        if identifier or camel or (rare and (word[0].isupper() or mixed)):
            word = word.lower().strip(".+-")
            if word and word not in STOPWORDS:
                out.append(word)
    return list(dict.fromkeys(out))


@functools.lru_cache(maxsize=1)
def _stemmer():
    import snowballstemmer

    return snowballstemmer.stemmer("english")


@functools.lru_cache(maxsize=200_000)
def stem(term: str) -> str:
    """An English word's Snowball stem ("crewed", "crews" -> "crew"); other terms unchanged."""
    return _stemmer().stemWord(term) if term.isascii() and term.isalpha() else term


def stems(terms_: Iterable[str]) -> set[str]:
    return {stem(t) for t in terms_}


def coverage(question_terms: Sequence[str], passage_terms: set[str]) -> float:
    """Share of the question's terms whose stem occurs among a passage's stems, 0..1
    (`passage_terms` already stemmed: see stems())."""
    if not question_terms:
        return 0.0
    return sum(1 for t in question_terms if stem(t) in passage_terms) / len(question_terms)
