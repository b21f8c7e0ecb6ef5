"""Request-scoped views of a collection's index.

A view is one generation of the index, opened: its Chroma collection, its lexical index and its
manifest.  Each search, ask, chat, replay or eval takes the current view when it starts and keeps
it to the end, so it never mixes two generations.  `archivist reindex` (and `ingest --rebuild`)
builds a new generation beside the current one and switches: new requests get the new view at
once, and the old one is closed, and its files dropped, when its last reader leaves.  Nothing
waits for anything.

Reads never write: a lexical index that is out of step with the vector store (built by another
version, or never built) is refused with a hint, and rebuilt by the writer (ingest, or the
server at start-up), never inside a search.
"""

from __future__ import annotations

import logging
import threading
from contextlib import contextmanager
from typing import Callable, Iterator

from rag.core.errors import IndexNeedsRepairError
from rag.storage.chunk_store import ChromaTarget, ChunkStore
from rag.storage.index_generations import IndexNames
from rag.storage.lexical import LexicalIndex
from rag.storage.lexical_postgres import PostgresLexicalIndex
from rag.storage.lexical_sqlite import SqliteLexicalIndex

log = logging.getLogger(__name__)


class IndexView:
    """One generation of one collection's index, open for reading (and for the writer's use)."""

    def __init__(self, chroma: ChromaTarget, names: IndexNames, build_info: dict[str, str],
                 db_url: str | None = None, embed_model: str | None = None) -> None:
        """`db_url`: the lexical index is in this PostgreSQL database, not a SQLite file.
        `embed_model`: the name of the embedding model `build_info` is of, for whoever embeds
        questions against this view (a collection may switch models while it is read)."""
        self.names = names
        self.embed_model = embed_model
        self._chroma = chroma
        self._db_url = db_url
        self.store = ChunkStore(chroma, names.chroma_collection, build_info)
        self.lexical = open_lexical(names, db_url)

    @property
    def generation(self) -> int:
        return self.names.generation

    def index_version(self) -> str:
        return self.lexical.index_version()

    def require_readable(self) -> None:
        if self.lexical.stale or (self.lexical.is_empty() and self.store.count() > 0):
            raise IndexNeedsRepairError(
                f"The keyword index of collection {self.names.collection!r} is out of step with "
                "its vector store (made by another version of Archivist, or never built).",
                hint="Run `archivist ingest` (or restart `archivist serve`): it rebuilds the "
                     "keyword index from the vector store without re-embedding anything.")

    def close(self) -> None:
        self.lexical.close()

    def drop(self) -> None:
        """Close, and delete this generation: its Chroma collection and its files."""
        self.close()
        drop_generation(self._chroma, self.names, self._db_url)


def open_lexical(names: IndexNames, db_url: str | None = None) -> LexicalIndex:
    if db_url:
        return PostgresLexicalIndex(db_url, names.chroma_collection)
    return SqliteLexicalIndex(names.lexical_path)


def drop_generation(chroma: ChromaTarget, names: IndexNames, db_url: str | None = None) -> None:
    """Delete a generation nobody reads: its Chroma collection and its files (and its lexical
    rows in PostgreSQL)."""
    ChunkStore.drop(chroma, names.chroma_collection)
    names.remove_files()
    if db_url:
        lexical = PostgresLexicalIndex(db_url, names.chroma_collection)
        try:
            lexical.drop()
        finally:
            lexical.close()


class IndexViews:
    """The current view of one collection, and the old ones still being read."""

    def __init__(self, open_view: Callable[[IndexNames], IndexView],
                 current_names: Callable[[], IndexNames]) -> None:
        self._open = open_view
        self._current_names = current_names  # the generation pointer: another process may move it
        self._current: IndexView | None = None
        self._readers: dict[int, int] = {}  # id(view) -> requests reading it
        self._retiring: dict[int, tuple[IndexView, bool]] = {}  # id(view) -> (view, drop files?)
        self._lock = threading.Lock()

    @contextmanager
    def reading(self, check: bool = True) -> Iterator[IndexView]:
        """The current view, kept open until the block ends.  `check=False` for the writer, who
        repairs what readers are refused."""
        view = self._acquire()
        try:
            if check:
                view.require_readable()
            yield view
        finally:
            self._release(view)

    def switch(self, view: IndexView, replaced: IndexNames) -> bool:
        """Make `view` (a generation just built) current.  If the generation it replaces is open
        here, it is dropped once unread, and True is returned; otherwise nobody here reads it
        and the caller drops it."""
        with self._lock:
            old, self._current = self._current, view
            self._readers.setdefault(id(view), 0)
            if old is None:
                return False
            self._retire(old, drop=old.names == replaced)
            return old.names == replaced

    def close(self) -> None:
        """Close every view (files kept); later reads open the current generation again."""
        with self._lock:
            views = [self._current] if self._current else []
            views += [view for view, _ in self._retiring.values()]
            self._current = None
            self._readers.clear()
            self._retiring.clear()
        for view in views:
            view.close()

    def _acquire(self) -> IndexView:
        names = self._current_names()
        with self._lock:
            if self._current is None or self._current.names != names:
                if self._current is not None:  # switched by another process: it drops the old one
                    self._retire(self._current, drop=False)
                    self._current = None
                self._current = self._open(names)
                self._readers.setdefault(id(self._current), 0)
            view = self._current
            self._readers[id(view)] += 1
            return view

    def _release(self, view: IndexView) -> None:
        with self._lock:
            if id(view) not in self._readers:  # closed meanwhile (the library shut down)
                return
            self._readers[id(view)] -= 1
            if id(view) in self._retiring and self._readers[id(view)] == 0:
                self._finish(view)

    def _retire(self, view: IndexView, drop: bool) -> None:
        """Under the lock: close (and maybe drop) `view` now if nobody reads it, else later."""
        if self._readers.get(id(view), 0) == 0:
            self._finish(view, drop)
        else:
            self._retiring[id(view)] = (view, drop)

    def _finish(self, view: IndexView, drop: bool | None = None) -> None:
        if drop is None:
            _, drop = self._retiring.pop(id(view))
        self._readers.pop(id(view), None)
        try:
            view.drop() if drop else view.close()
        except Exception:  # the old generation's leftovers must not fail the request that left
            log.exception("retiring index generation %d of %s failed", view.generation,
                          view.names.collection)
