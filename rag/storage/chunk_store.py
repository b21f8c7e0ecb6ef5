"""The only module that talks to Chroma.  Everything else sees Chunks, Hits and ids.

The vectors live in embedded Chroma inside the index folder, or on a Chroma server
(ARCHIVIST_CHROMA_URL) that several machines share; both behave the same to the rest of the code.
The collection records what built it (embedding model fingerprint and chunking parameters); opening
it with different ones is refused, because mixing vectors from two models silently ruins search.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import random
from typing import Iterable, Iterator, Sequence
from urllib.parse import urlsplit

from rag.core.errors import IndexMismatchError, StoreUnavailableError
from rag.core.settings import ChromaTarget
from rag.core.shapes import Chunk, Hit
from rag.language.text import is_cjk

log = logging.getLogger(__name__)

_WRITE_BATCH = 1000  # Chroma rejects very large batches; stay well below its limit

# Each chunk's script, tagged in its metadata: a multilingual embedding model rates a question
# closer to any text in the question's own language than to the passage in the other one that
# answers it, so the retriever searches each script on its own (RetrievalConfig.language_offset).
SCRIPTS = ("cjk", "other")


def script_of(text: str) -> str:
    return "cjk" if is_cjk(text) else "other"


def _to_metadata(chunk: Chunk) -> dict[str, str | int | float]:
    meta: dict[str, str | int | float] = {
        "source": chunk.source,
        "start": chunk.start,
        "end": chunk.end,
        "content_hash": chunk.content_hash,
        "ordinal": chunk.ordinal,
        "file_hash": chunk.file_hash,
        "vector_key": chunk.vector_key,
        "script": script_of(chunk.text),
    }
    # Chroma metadata cannot hold None: absent keys mean "no page" / "no heading".
    if chunk.page is not None:
        meta["page"] = chunk.page
    if chunk.heading is not None:
        meta["heading"] = chunk.heading
    if chunk.ocr_confidence is not None:  # absent: not OCRed
        meta["ocr_confidence"] = chunk.ocr_confidence
    return meta


def _from_record(chunk_id: str, text: str, meta: dict) -> Chunk:
    return Chunk(
        chunk_id=chunk_id,
        source=str(meta["source"]),
        text=text,
        start=int(meta["start"]),
        end=int(meta["end"]),
        page=int(meta["page"]) if "page" in meta else None,
        heading=str(meta["heading"]) if "heading" in meta else None,
        content_hash=str(meta["content_hash"]),
        ordinal=int(meta["ordinal"]),
        file_hash=str(meta["file_hash"]),
        ocr_confidence=float(meta["ocr_confidence"]) if "ocr_confidence" in meta else None,
    )


def _unavailable(url: str | None, exc: BaseException) -> StoreUnavailableError:
    return StoreUnavailableError(
        f"The Chroma server at {url} did not answer ({exc}).",
        hint="Check that it is running (`chroma run --path DIR --port PORT`) and reachable from "
        "here, and that ARCHIVIST_CHROMA_URL (and ARCHIVIST_CHROMA_TOKEN, if it needs one) are "
        "right; `archivist doctor` shows them.")


def _guarded(method):
    @functools.wraps(method)
    def call(self, *args, **kwargs):
        with _guard(self._target):
            return method(self, *args, **kwargs)
    return call


@contextlib.contextmanager
def _guard(target: ChromaTarget) -> Iterator[None]:
    """A Chroma server that went away is the user's to fix, not a crash: say which and where."""
    if not target.remote:
        yield
        return
    import httpx

    from chromadb.errors import NotFoundError as ChromaNotFound

    try:
        yield
    except (httpx.TransportError, ConnectionError) as exc:
        raise _unavailable(target.url, exc) from exc
    except ChromaNotFound as exc:  # another replica's reindex dropped it while this one read it
        raise StoreUnavailableError(
            f"A collection this request was reading is gone from the Chroma server at "
            f"{target.url} ({exc}).",
            hint="A reindex elsewhere replaced it: ask again, the next request reads the new "
                 "one.") from exc


class ChunkStore:
    """Chunks and their vectors in one Chroma collection."""

    def __init__(self, target: ChromaTarget, collection: str, build_info: dict[str, str]) -> None:
        self._target = target
        self._build_info = {f"archivist:{k}": v for k, v in build_info.items()}
        self._tags_scripts = False
        hnsw = {"space": "cosine", **({"ef_search": target.ef_search} if target.ef_search else {})}
        with _guard(target):
            self._collection = _client(target).get_or_create_collection(
                name=collection,
                metadata={"hnsw:space": "cosine", **self._build_info},
                configuration={"hnsw": hnsw},  # for a new collection; an existing one keeps its own
                embedding_function=None,  # we always pass vectors; never let Chroma fetch a model
            )
        self._check_build_info(collection)
        self._search_breadth(target.ef_search)

    def _search_breadth(self, ef_search: int | None) -> None:
        """Give an existing collection the configured HNSW search breadth (only its search
        changes: the graph stays as built, so no reindex)."""
        if not ef_search:
            return
        current = ((self._collection.configuration or {}).get("hnsw") or {}).get("ef_search")
        if current != ef_search:
            with _guard(self._target):
                self._collection.modify(configuration={"hnsw": {"ef_search": ef_search}})

    def _check_build_info(self, collection: str) -> None:
        stored = self._collection.metadata or {}
        for key, expected in self._build_info.items():
            found = stored.get(key)
            if found != expected:
                raise IndexMismatchError(
                    f"The index in collection {collection!r} was built with {key.split(':', 1)[1]}="
                    f"{found!r}, but the current settings use {expected!r}.",
                    hint="Run `archivist reindex` (or `archivist ingest --rebuild`) to re-embed "
                    "everything with the current settings: searches keep using the old index until "
                    "the new one is ready. Or restore the previous ARCHIVIST_EMBED_MODEL / chunking "
                    "settings.",
                )

    # --- reads -------------------------------------------------------------------------
    @_guarded
    def count(self) -> int:
        return self._collection.count()

    @_guarded
    def count_script(self, script: str) -> int:
        """Chunks of one script (SCRIPTS); 0 where chunks do not carry it (see tags_scripts)."""
        return len(self._collection.get(where={"script": script}, include=[])["ids"])

    @_guarded
    def ids_for_source(self, source: str) -> set[str]:
        return set(self._collection.get(where={"source": source}, include=[])["ids"])

    @_guarded
    def sources(self) -> set[str]:
        """Every source that has at least one chunk (used to find orphans)."""
        found: set[str] = set()
        offset, page = 0, 5000
        while True:
            batch = self._collection.get(include=["metadatas"], limit=page, offset=offset)
            found.update(str(m["source"]) for m in batch["metadatas"] or [])
            if len(batch["ids"]) < page:
                return found
            offset += page

    @_guarded
    def vectors_for(self, vector_keys: Iterable[str]) -> dict[str, list[float]]:
        """Stored vectors for embedding texts already embedded anywhere in the collection.

        Same text, same model, same vector: this is what makes unchanged passages, renamed files
        and copies of a file cost no embedding.  Keys are Chunk.vector_key.
        """
        wanted = list(dict.fromkeys(vector_keys))
        found: dict[str, list[float]] = {}
        for i in range(0, len(wanted), 500):
            got = self._collection.get(where={"vector_key": {"$in": wanted[i:i + 500]}},
                                       include=["metadatas", "embeddings"])
            for meta, vec in zip(got["metadatas"], got["embeddings"]):
                found.setdefault(str(meta["vector_key"]), [float(x) for x in vec])
        return found

    @property
    def tags_scripts(self) -> bool:
        """Whether the chunks carry their script (indexes built before it was tagged do not:
        they are searched as one, as they were).  Asked of the first chunk until one says yes:
        an empty collection may yet be filled."""
        if not self._tags_scripts:
            with _guard(self._target):
                first = self._collection.get(limit=1, include=["metadatas"])["metadatas"]
            self._tags_scripts = bool(first) and "script" in first[0]
        return self._tags_scripts

    @_guarded
    def query(self, vector: Sequence[float], k: int, sources: Sequence[str] | None = None,
              with_text: bool = False, script: str | None = None) -> list[Hit]:
        """Nearest chunks by cosine similarity, best first; optionally within some sources
        and/or one script (SCRIPTS).

        The chunks' texts are empty unless `with_text`: the retriever reads the texts of the
        chunks it keeps from the lexical index (one version of each file), and fetching 50
        documents from Chroma was 12 of a query's 14 ms at 100k chunks."""
        if sources is not None and not sources:
            return []
        # No count() first (10 ms at 100k chunks): Chroma 1.x returns fewer than n_results when
        # the collection, or the part the filter allows, holds fewer.
        where = [{"source": {"$in": list(sources)}}] if sources is not None else []
        if script is not None:
            where.append({"script": script})
        res = self._collection.query(
            query_embeddings=[list(vector)],
            n_results=k,
            where=where[0] if len(where) == 1 else {"$and": where} if where else None,
            include=["documents", "metadatas", "distances"] if with_text else ["metadatas", "distances"],
        )
        texts = res["documents"][0] if with_text else [""] * len(res["ids"][0])
        hits = [
            # cosine space: distance = 1 - cosine similarity
            Hit(chunk=_from_record(cid, doc, meta), score=1.0 - float(dist))
            for cid, doc, meta, dist in zip(res["ids"][0], texts, res["metadatas"][0], res["distances"][0])
        ]
        return sorted(hits, key=lambda h: h.score, reverse=True)

    @_guarded
    def vectors(self, ids: Sequence[str]) -> dict[str, list[float]]:
        if not ids:
            return {}
        got = self._collection.get(ids=list(ids), include=["embeddings"])
        return {cid: [float(x) for x in vec] for cid, vec in zip(got["ids"], got["embeddings"])}

    @_guarded
    def unreachable(self, sample: int = 200, k: int = 10) -> tuple[list[str], int]:
        """Chunks of a fixed sample that a search with their own vector does not return in its
        top k, and how many were checked.  An HNSW graph worn by many deletes and re-adds can
        leave live chunks that no query reaches (chroma-core/chroma#7758, open for our pinned
        1.5.9): dense search then never finds them, silently.  A fresh graph (`archivist
        reindex`) reaches them again."""
        ids = self._collection.get(include=[])["ids"]
        if not ids:
            return [], 0
        chosen = random.Random(0).sample(ids, min(sample, len(ids)))
        got = self._collection.get(ids=chosen, include=["embeddings"])
        found = self._collection.query(query_embeddings=got["embeddings"], n_results=k,
                                       include=[])["ids"]
        return [cid for cid, top in zip(got["ids"], found) if cid not in top], len(chosen)

    def iter_chunks(self, page: int = 2000) -> Iterator[Chunk]:
        """Every chunk in the collection (used to rebuild the lexical index)."""
        offset = 0
        while True:
            with _guard(self._target):
                batch = self._collection.get(include=["documents", "metadatas"], limit=page,
                                             offset=offset)
            yield from (_from_record(cid, doc, meta) for cid, doc, meta in
                        zip(batch["ids"], batch["documents"], batch["metadatas"]))
            if len(batch["ids"]) < page:
                return
            offset += page

    # --- writes ------------------------------------------------------------------------
    @_guarded
    def upsert(self, chunks: Sequence[Chunk], vectors: Sequence[Sequence[float]]) -> None:
        for i in range(0, len(chunks), _WRITE_BATCH):
            part = chunks[i:i + _WRITE_BATCH]
            self._collection.upsert(
                ids=[c.chunk_id for c in part],
                documents=[c.text for c in part],
                metadatas=[_to_metadata(c) for c in part],
                embeddings=[list(v) for v in vectors[i:i + _WRITE_BATCH]],
            )

    @_guarded
    def delete(self, ids: Iterable[str]) -> None:
        ids = list(ids)
        for i in range(0, len(ids), _WRITE_BATCH):
            self._collection.delete(ids=ids[i:i + _WRITE_BATCH])

    def delete_source(self, source: str) -> int:
        ids = self.ids_for_source(source)
        self.delete(ids)
        return len(ids)

    @staticmethod
    def drop(target: ChromaTarget, collection: str) -> None:
        """Delete a collection and its vectors (used by `ingest --rebuild`).

        Goes through Chroma rather than deleting files: Chroma keeps one client per path for the
        life of the process, and it would not notice the files disappearing."""
        with _guard(target):
            client = _client(target)
            if collection in [c.name for c in client.list_collections()]:
                client.delete_collection(collection)


def collection_names(target: ChromaTarget) -> list[str]:
    with _guard(target):
        return sorted(c.name for c in _client(target).list_collections())


def copy_collection(source: ChromaTarget, target: ChromaTarget, name: str, page: int = 1000) -> int:
    """Copy one collection, vectors and build metadata included, replacing any of that name at
    the target (moving an embedded index onto a Chroma server, and back).  Returns the count."""
    with _guard(source):
        src = _client(source).get_collection(name, embedding_function=None)
        metadata = dict(src.metadata or {})
    ChunkStore.drop(target, name)
    with _guard(target):
        hnsw = (src.configuration or {}).get("hnsw") or {}
        dst = _client(target).create_collection(
            name, metadata=metadata, embedding_function=None,
            configuration={"hnsw": {k: hnsw[k] for k in ("space", "ef_search") if k in hnsw}})
    copied, offset = 0, 0
    while True:
        with _guard(source):
            batch = src.get(include=["documents", "metadatas", "embeddings"], limit=page,
                            offset=offset)
        if len(batch["ids"]):
            with _guard(target):
                dst.upsert(ids=batch["ids"], documents=batch["documents"],
                           metadatas=batch["metadatas"],
                           embeddings=[list(map(float, v)) for v in batch["embeddings"]])
        copied += len(batch["ids"])
        if len(batch["ids"]) < page:
            return copied
        offset += page


def _client(target: ChromaTarget):
    import chromadb  # heavy: import when a store is opened, not when this module is imported
    from chromadb.config import Settings as ChromaSettings

    settings = ChromaSettings(anonymized_telemetry=False, allow_reset=False)
    if not target.remote:
        target.path.mkdir(parents=True, exist_ok=True)
        return chromadb.PersistentClient(path=str(target.path), settings=settings)
    return _http_client(target.url, target.token)


@functools.lru_cache(maxsize=8)
def _http_client(url: str, token: str | None):
    """One client per server for the process: it holds the connection pool."""
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    settings = ChromaSettings(anonymized_telemetry=False, allow_reset=False)
    parts = urlsplit(url)
    headers = {"Authorization": f"Bearer {token}"} if token else None
    try:
        return chromadb.HttpClient(host=parts.hostname or "localhost",
                                   port=parts.port or (443 if parts.scheme == "https" else 80),
                                   ssl=parts.scheme == "https", headers=headers, settings=settings)
    except ValueError as exc:  # chromadb's way of saying: no server, or it refused the token
        raise _unavailable(url, exc) from exc


def forget_client(target: ChromaTarget) -> None:
    """Drop this process's cached embedded Chroma client (its files are being replaced): the next
    ChunkStore opened there reads the new files.  A server's client has nothing to forget."""
    if target.remote:
        return
    chroma_dir = target.path
    try:
        from chromadb.api.shared_system_client import SharedSystemClient
    except ImportError:  # pragma: no cover
        return
    system = SharedSystemClient._identifier_to_system.pop(str(chroma_dir), None)
    getattr(SharedSystemClient, "_identifier_to_refcount", {}).pop(str(chroma_dir), None)
    if system is not None:
        try:
            system.stop()
        except Exception:  # a stopped system is what we wanted anyway
            log.debug("stopping the Chroma client for %s failed", chroma_dir, exc_info=True)
