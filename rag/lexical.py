"""The lexical (BM25) side of hybrid search, and the chunk catalogue it is built on.

SQLite FTS5 over the same chunks as the Chroma collection: one table of chunks (text, place,
position in the file) and a full-text index over their terms, kept in sync by ingest.  Terms are
produced by `terms()`: Chinese and Japanese runs are segmented with jieba (search mode, so both
words and their parts match), other text is split into words, with identifiers like
`max_connections` kept whole *and* split.  FTS5 then applies the Porter stemmer.  The chunk table
also answers "which chunks surround this one" for small-to-big widening.

Chinese is matched so that no single segmentation decides: Traditional text is first written in
Simplified characters and mainland words (`to_simplified`, from OpenCC's dictionaries: 檔案 and
文件, 軟體 and 软件 are one term), and besides jieba's words each run is indexed as overlapping
character bigrams (`grams()`), which still match where jieba cuts a word the question spells
differently, or does not know it.  Four weighted columns: the chunk's heading, its text, the
file's opening line (a manual page's "ls - 列出目录内容", a chapter's title) and the bigrams.  A
question's search terms (`search_terms()`) are its words and the bigrams of what is left once
question words (怎么, 如何, 什么, 吗…) are taken out.
"""

from __future__ import annotations

import functools
import re
import secrets
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Sequence

from rag.db import connect
from rag.text import CJK_RUN
from rag.types import Chunk

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
    acronyms (`SSO`), capitalised words that are not common words (`Patroni`; `common(word)`
    tells, e.g. from the embedding model's vocabulary), and in a question with Chinese in it any
    Latin word that is not a common one (`netplan`).  A capitalised common word ("Christmas", "Monday") is not a name, and
    ordinary words are left out: a user's paraphrase ("lifeboat" for "rescue launch") must not
    count as a subject the documents lack.  Chinese words are left out too, as colloquial ones
    are often absent from formal documents."""
    mixed = bool(CJK_RUN.search(question))
    out = []
    for match in _LATIN_TOKEN.finditer(question):
        word = match.group()
        identifier = any(ch.isdigit() or ch in "_.+" for ch in word.strip(".+-"))
        inner_capitals = any(ch.isupper() for ch in word[1:])
        rare = not common(word.lower())
        if identifier or inner_capitals or (rare and (word[0].isupper() or mixed)):
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


_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS chunks (
    id INTEGER PRIMARY KEY, chunk_id TEXT UNIQUE NOT NULL, source TEXT NOT NULL,
    ordinal INTEGER NOT NULL, start INTEGER NOT NULL, "end" INTEGER NOT NULL, page INTEGER,
    heading TEXT, content_hash TEXT NOT NULL, file_hash TEXT NOT NULL, text TEXT NOT NULL,
    head_terms TEXT NOT NULL, terms TEXT NOT NULL, ocr_confidence REAL,
    title_terms TEXT NOT NULL DEFAULT '', gram_terms TEXT NOT NULL DEFAULT '');
CREATE INDEX IF NOT EXISTS chunks_by_source ON chunks (source, ordinal);
CREATE VIRTUAL TABLE IF NOT EXISTS fts USING fts5(
    head_terms, terms, title_terms, gram_terms, content='chunks', content_rowid='id',
    tokenize="porter unicode61 tokenchars '_'");
CREATE TRIGGER IF NOT EXISTS chunks_ai AFTER INSERT ON chunks BEGIN
    INSERT INTO fts(rowid, head_terms, terms, title_terms, gram_terms)
    VALUES (new.id, new.head_terms, new.terms, new.title_terms, new.gram_terms); END;
CREATE TRIGGER IF NOT EXISTS chunks_ad AFTER DELETE ON chunks BEGIN
    INSERT INTO fts(fts, rowid, head_terms, terms, title_terms, gram_terms)
    VALUES ('delete', old.id, old.head_terms, old.terms, old.title_terms, old.gram_terms);
END;
"""
# How much one occurrence counts in each column, against 1 in the text: headings name the topic,
# a file's opening line names the file's (every chunk of the file carries it), and a bigram
# match is weaker evidence than a word match.  rag/lexical_pg.py computes the same BM25 (it bakes
# the weights into its postings: bump its PG_TERMS_VERSION when they change).  Tuned on the
# zh-hard tuning half (bench/tune_retrieval.py, MRR@10): the opening line is the gain (0.48 without,
# 0.56 at 0.5 or 1.0, 2.0 within 0.01), and 0.5 keeps the first Chinese set's top hit (1.0 loses one
# of its 61); bigrams change nothing measurable there (0 and 0.25 alike, 0.5 and 1.0 lose 0.02):
# kept light, for words jieba cuts apart.
HEADING_WEIGHT = 3.0
TITLE_WEIGHT = 0.5
GRAM_WEIGHT = 0.25
WEIGHTS = (HEADING_WEIGHT, 1.0, TITLE_WEIGHT, GRAM_WEIGHT)


def columns(chunk: Chunk, title: str) -> tuple[str, str, str, str]:
    """The four indexed columns of a chunk (heading, text, the file's opening line with its
    bigrams, the heading's and text's bigrams), each a space-separated string of terms; `title`
    is opening() of its file."""
    head = chunk.heading or ""
    return (" ".join(terms(head)), " ".join(terms(chunk.text)), " ".join(terms(title) + grams(title)),
            " ".join(grams(head) + grams(chunk.text)))

_COLUMNS = ('chunk_id, source, text, start, "end", page, heading, content_hash, ordinal, file_hash, '
            'ocr_confidence')


def _chunk(row: Sequence) -> Chunk:
    return Chunk(chunk_id=row[0], source=row[1], text=row[2], start=row[3], end=row[4],
                 page=row[5], heading=row[6], content_hash=row[7], ordinal=row[8], file_hash=row[9],
                 ocr_confidence=row[10])


@dataclass(frozen=True)
class LexicalHit:
    chunk_id: str
    source: str
    bm25: float  # FTS5's bm25(): lower is better


class LexicalIndex:
    """One SQLite file per collection.  Safe to use from several threads (one lock)."""

    def __init__(self, path: Path) -> None:
        self._db = connect(path)
        self._lock = threading.Lock()
        with self._lock:
            self._db.executescript(_SCHEMA)  # a new index; a no-op on an existing one
            columns = {r[1] for r in self._db.execute("PRAGMA table_info(chunks)")}
            if "ocr_confidence" not in columns:  # an index from before OCR: none of it was OCRed
                self._db.execute("ALTER TABLE chunks ADD COLUMN ocr_confidence REAL")
            for column in ("title_terms", "gram_terms"):  # from before them: stale, rebuilt by ingest
                if columns and column not in columns:
                    self._db.execute(f"ALTER TABLE chunks ADD COLUMN {column} TEXT NOT NULL DEFAULT ''")
            row = self._db.execute("SELECT value FROM meta WHERE key = 'terms_version'").fetchone()
            if row is None:
                self._db.execute("INSERT INTO meta VALUES ('terms_version', ?)", (TERMS_VERSION,))
            self._db.execute("INSERT OR IGNORE INTO meta VALUES ('index_version', ?)",
                             (f"{secrets.token_hex(8)}-0",))
        # Terms made by another version of terms(): searches would miss; ingest rebuilds it.
        self.stale = row is not None and row[0] != TERMS_VERSION
        self._weights = WEIGHTS[:2] if self.stale else WEIGHTS  # a stale index has two columns

    def reset(self) -> None:
        """Drop every row and recreate the tables for the current terms version (the writer's
        first step when rebuilding a stale index from the vector store)."""
        with self._lock:
            self._db.executescript("DROP TABLE IF EXISTS fts; DROP TABLE IF EXISTS chunks;"
                                   "DROP TRIGGER IF EXISTS chunks_ai; DROP TRIGGER IF EXISTS chunks_ad;")
            self._db.executescript(_SCHEMA)
            self._db.execute("INSERT OR REPLACE INTO meta VALUES ('terms_version', ?)", (TERMS_VERSION,))
        self.stale = False
        self._weights = WEIGHTS

    def close(self) -> None:
        self._db.close()

    # --- writes ------------------------------------------------------------------------
    def replace_source(self, source: str, chunks: Sequence[Chunk]) -> None:
        """Make the source's chunks exactly `chunks`, in one transaction."""
        title = opening(chunks)
        rows = [(c.chunk_id, c.source, c.ordinal, c.start, c.end, c.page, c.heading, c.content_hash,
                 c.file_hash, c.text, *columns(c, title), c.ocr_confidence)
                for c in chunks]
        with self._lock, self._db:
            self._db.execute("BEGIN")
            self._db.execute("DELETE FROM chunks WHERE source = ?", (source,))
            self._db.executemany(
                "INSERT OR REPLACE INTO chunks (chunk_id, source, ordinal, start, \"end\", page, heading, "
                "content_hash, file_hash, text, head_terms, terms, title_terms, gram_terms, ocr_confidence) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                rows)

    def index_version(self) -> str:
        """Changes with every ingest that changes the index, and differs between any two indexes
        (a random token and a counter): answers cached under another version are stale."""
        with self._lock:
            return self._version()

    def bump_version(self) -> None:
        with self._lock:
            token, count = self._version().rsplit("-", 1)
            self._db.execute("UPDATE meta SET value = ? WHERE key = 'index_version'",
                             (f"{token}-{int(count) + 1}",))

    def _version(self) -> str:
        return self._db.execute("SELECT value FROM meta WHERE key = 'index_version'").fetchone()[0]

    def delete_source(self, source: str) -> None:
        with self._lock:
            self._db.execute("DELETE FROM chunks WHERE source = ?", (source,))

    def clear(self) -> None:
        with self._lock:
            self._db.execute("DELETE FROM chunks")

    # --- reads -------------------------------------------------------------------------
    def count(self) -> int:
        with self._lock:
            return self._db.execute("SELECT count(*) FROM chunks").fetchone()[0]

    def is_empty(self) -> bool:
        with self._lock:
            return self._db.execute("SELECT 1 FROM chunks LIMIT 1").fetchone() is None

    def sources(self) -> set[str]:
        with self._lock:
            return {r[0] for r in self._db.execute("SELECT DISTINCT source FROM chunks")}

    def ocr_pages(self) -> dict[str, int]:
        """Pages read by OCR, per source that has any (what the library page shows)."""
        with self._lock:
            return dict(self._db.execute(
                "SELECT source, count(DISTINCT coalesce(page, 0)) FROM chunks "
                "WHERE ocr_confidence IS NOT NULL GROUP BY source"))

    def search(self, question_terms: Sequence[str], k: int,
               sources: Iterable[str] | None = None) -> list[LexicalHit]:
        """BM25 over any of the terms (OR), best first; optionally within some sources."""
        if not question_terms:
            return []
        match = " OR ".join('"' + t.replace('"', '""') + '"' for t in question_terms)
        sql = (f"SELECT c.chunk_id, c.source, bm25(fts, {', '.join(map(str, self._weights))}) AS rank FROM fts "
               "JOIN chunks c ON c.id = fts.rowid WHERE fts MATCH ?")
        params: list = [match]
        if sources is not None:
            wanted = list(sources)
            if not wanted:
                return []
            sql += f" AND c.source IN ({','.join('?' * len(wanted))})"
            params += wanted
        sql += " ORDER BY rank LIMIT ?"
        params.append(k)
        with self._lock:
            return [LexicalHit(cid, source, rank) for cid, source, rank in self._db.execute(sql, params)]

    def absent(self, words: Sequence[str]) -> list[str]:
        """Those of `words` that no chunk contains; a dotted or hyphenated word (`pg_hba.conf`,
        `ora-01555`) counts as present where one chunk has all its parts."""
        out = []
        with self._lock:
            for word in words:
                parts = [p for p in re.split(r"[.+-]+", word) if p]
                match = " AND ".join('"' + p.replace('"', '""') + '"' for p in parts)
                if match and self._db.execute("SELECT 1 FROM fts WHERE fts MATCH ? LIMIT 1",
                                              (match,)).fetchone() is None:
                    out.append(word)
        return out

    def chunks(self, chunk_ids: Sequence[str]) -> dict[str, tuple[Chunk, list[str]]]:
        """Chunks by id, each with its index terms (computed once, at ingest)."""
        if not chunk_ids:
            return {}
        marks = ",".join("?" * len(chunk_ids))
        with self._lock:
            rows = self._db.execute(
                f"SELECT {_COLUMNS}, head_terms || ' ' || terms FROM chunks WHERE chunk_id IN ({marks})",
                list(chunk_ids)).fetchall()
        return {row[0]: (_chunk(row), row[-1].split()) for row in rows}

    # Both below read only the version of the file that `chunk` came from: if ingest replaced the
    # file since the search, they find nothing rather than splice new text onto an old hit.
    def neighbours(self, chunk: Chunk, before: int, after: int) -> list[Chunk]:
        """The chunk and up to before/after chunks around it in the same file, in order."""
        with self._lock:
            rows = self._db.execute(
                f"SELECT {_COLUMNS} FROM chunks WHERE source = ? AND file_hash IS ? "
                "AND ordinal BETWEEN ? AND ? ORDER BY ordinal",
                (chunk.source, chunk.file_hash, chunk.ordinal - before, chunk.ordinal + after)).fetchall()
        return [_chunk(r) for r in rows]

    def chunks_in_span(self, chunk: Chunk, start: int, end: int) -> list[Chunk]:
        """The chunks of `chunk`'s file lying entirely within [start, end), by offset."""
        with self._lock:
            rows = self._db.execute(
                f"SELECT {_COLUMNS} FROM chunks WHERE source = ? AND file_hash IS ? "
                "AND start >= ? AND \"end\" <= ? ORDER BY start",
                (chunk.source, chunk.file_hash, start, end)).fetchall()
        return [_chunk(r) for r in rows]

    def chunks_of(self, source: str) -> list[Chunk]:
        """Every chunk of one file, in order (copying an index into PostgreSQL)."""
        with self._lock:
            rows = self._db.execute(f"SELECT {_COLUMNS} FROM chunks WHERE source = ? ORDER BY ordinal",
                                    (source,)).fetchall()
        return [_chunk(r) for r in rows]
