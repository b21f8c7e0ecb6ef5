"""`archivist export` / `archivist import`: the whole index folder as one versioned .tar.gz.

The archive holds manifest.json (format version, when, which archivist, the embedding fingerprint,
each collection's chunk count and embedding model, the sha256 of every member) and the index
folder's files under `index/`.  Export holds the ingest lock (no writer runs) and copies SQLite
files with SQLite's backup API, so a live WAL never ends up half-copied.  Import checks the format
version and every checksum in a staging folder next to the index before touching the index, then
swaps the files in with renames under the ingest lock, keeping the old ones in a .bak folder until
the swap succeeded, and gives each collection the embedding model its vectors were made with.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import sqlite3
import tarfile
import tempfile
import time
import zlib
from pathlib import Path

from ingest.lock import writer_lock
from ingest.snapshot_models import chosen_model, restore_choices
from rag.core.errors import ArchivistError
from rag.core.settings import Settings
from rag.storage import index_generations
from rag.storage.chunk_store import ChromaTarget, collection_names, copy_collection, forget_client

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
PREFIX = "index/"
_SKIP_SUFFIXES = ("-wal", "-shm", "-journal")
# Never archived: the writer lock, and a running server's registration (it holds the token that
# lets `archivist ingest` hand work to that server).
_SKIP_NAMES = {"ingest.lock", "server.json"}
# Never archived nor replaced: the audit log records this installation's history, the export and
# the import included (`archivist audit export` is how it travels).
_AUDIT_LOG = "audit.sqlite3"


def _kept(name: str) -> bool:
    """Files of the index folder that an export leaves out and an import leaves in place."""
    return name in _SKIP_NAMES or name.startswith(_AUDIT_LOG)
_SQLITE_MAGIC = b"SQLite format 3\x00"


class SnapshotError(ArchivistError):
    """An archive that cannot be exported or imported (corrupt, wrong version, tampered)."""


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("archivist")
    except Exception:
        return "0.1.0"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _is_sqlite(path: Path) -> bool:
    with open(path, "rb") as f:
        return f.read(16) == _SQLITE_MAGIC


def _backup_sqlite(src: Path, dst: Path) -> None:
    """A consistent copy of a live database (committed WAL content included), as one file."""
    source = sqlite3.connect(f"file:{src}?mode=ro", uri=True, timeout=30)
    try:
        target = sqlite3.connect(str(dst))
        try:
            source.backup(target)
            target.execute("PRAGMA journal_mode=DELETE")  # a self-contained file, no -wal beside it
        finally:
            target.close()
    finally:
        source.close()




def _index_files(index_dir: Path) -> list[Path]:
    files = []
    for path in sorted(index_dir.rglob("*")):
        rel = path.relative_to(index_dir)
        if not path.is_file() or path.is_symlink():
            continue
        if _kept(rel.name) or rel.name.endswith(_SKIP_SUFFIXES):
            continue
        files.append(rel)
    return files


def _collections(staged: Path, settings: Settings) -> dict[str, dict]:
    """Chunk counts per collection, from the staged lexical indexes (no Chroma client opened),
    and the embedding model each was built with (its marker's choice, or the configured one)."""
    found: dict[str, dict] = {}
    for name, names in index_generations.every_current(staged).items():
        chunks = None
        try:
            db = sqlite3.connect(f"file:{names.lexical_path}?mode=ro", uri=True)
            try:
                chunks = db.execute("SELECT count(*) FROM chunks").fetchone()[0]
            finally:
                db.close()
        except sqlite3.Error:
            pass  # no lexical index (yet): the count is unknown, the files are archived anyway
        found[name] = {"chunks": chunks, "embed_model": chosen_model(settings, name)}
    return found


def _fingerprints(staged: Path) -> dict[str, str]:
    """Embedding fingerprint per Chroma collection, read from the staged chroma.sqlite3."""
    path = staged / "chroma" / "chroma.sqlite3"
    if not path.exists():
        return {}
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        rows = db.execute("SELECT c.name, m.str_value FROM collections c JOIN collection_metadata m "
                          "ON m.collection_id = c.id WHERE m.key = 'archivist:embed_model'").fetchall()
        return {name: value for name, value in rows}
    except sqlite3.Error:
        return {}
    finally:
        db.close()


def _copy_vectors(source: ChromaTarget, target: ChromaTarget, staged: Path) -> None:
    """Copy the Chroma collections of every current generation in `staged` between an embedded
    store and a server, then close the embedded one so its files are complete."""
    try:
        for names in index_generations.every_current(staged).values():
            copy_collection(source, target, names.chroma_collection)
    finally:
        forget_client(source)
        forget_client(target)


def export_index(settings: Settings, archive: Path) -> dict:
    """Write a snapshot of settings.index_dir to `archive`; returns its manifest."""
    index_dir = settings.index_dir
    if not index_dir.is_dir() or not _index_files(index_dir):
        raise SnapshotError(f"There is no index in {index_dir} to export.",
                            hint="Run `archivist ingest` first, or set ARCHIVIST_INDEX_DIR.")
    archive = Path(archive)
    archive.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".archivist-export-", dir=archive.parent))
    try:
        with writer_lock(settings):
            for rel in _index_files(index_dir):
                if settings.chroma.remote and rel.parts[0] == "chroma":
                    continue  # an embedded store from before the server: not this index's vectors
                src, dst = index_dir / rel, staging / rel
                dst.parent.mkdir(parents=True, exist_ok=True)
                if _is_sqlite(src):
                    _backup_sqlite(src, dst)
                else:
                    shutil.copy2(src, dst)
            if settings.chroma.remote:  # the archive is the same as an embedded index's
                _copy_vectors(settings.chroma, ChromaTarget(staging / "chroma"), staging)
        files = {rel.as_posix(): _sha256(staging / rel) for rel in _index_files(staging)}
        fingerprints = _fingerprints(staging)
        manifest = {
            "format": "archivist-index",
            "format_version": FORMAT_VERSION,
            "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "archivist_version": _version(),
            "embedding_fingerprint": sorted(set(fingerprints.values()))[0] if len(set(fingerprints.values())) == 1 else fingerprints,
            "collections": _collections(staging, settings),
            "files": files,
        }
        partial = archive.with_name(archive.name + ".partial")
        with tarfile.open(partial, "w:gz") as tar:
            data = json.dumps(manifest, indent=2, sort_keys=True).encode()
            info = tarfile.TarInfo(MANIFEST)
            info.size, info.mtime = len(data), int(time.time())
            tar.addfile(info, io.BytesIO(data))
            for name in files:
                tar.add(staging / name, arcname=PREFIX + name, recursive=False)
        os.replace(partial, archive)
        return manifest
    finally:
        shutil.rmtree(staging, ignore_errors=True)


_CORRUPT_HINT = ("The file is damaged or incomplete (e.g. an interrupted copy): export it again, "
                 "or use another copy.")


def _read_manifest(tar: tarfile.TarFile) -> dict:
    try:
        member = tar.getmember(MANIFEST)
        manifest = json.loads(tar.extractfile(member).read())
    except KeyError:
        raise SnapshotError("The archive has no manifest.json: it is not an archivist export.",
                            hint="Make archives with `archivist export PATH`.")
    except (ValueError, AttributeError):
        raise SnapshotError("The archive's manifest.json is unreadable.", hint=_CORRUPT_HINT)
    if manifest.get("format") != "archivist-index" or not isinstance(manifest.get("files"), dict):
        raise SnapshotError("The archive is not an archivist index export.",
                            hint="Make archives with `archivist export PATH`.")
    version = manifest.get("format_version")
    if version != FORMAT_VERSION:
        raise SnapshotError(f"The archive has format version {version!r}; this archivist "
                            f"({_version()}) reads version {FORMAT_VERSION}.",
                            hint="Import it with the archivist version that exported it "
                                 f"({manifest.get('archivist_version', 'unknown')}), or export again.")
    return manifest


def verify_archive(archive: Path, staging: Path) -> dict:
    """Extract `archive` into `staging` and check it against its manifest; returns the manifest."""
    archive = Path(archive)
    if not archive.is_file():
        raise SnapshotError(f"{archive} does not exist.", hint="Check the path.")
    try:
        with tarfile.open(archive, "r:gz") as tar:
            manifest = _read_manifest(tar)
            expected = manifest["files"]
            seen: set[str] = set()
            for member in tar:
                if member.name == MANIFEST:
                    continue
                name = member.name[len(PREFIX):] if member.name.startswith(PREFIX) else None
                if (name is None or name not in expected or not member.isfile()
                        or name.startswith("/") or ".." in Path(name).parts):
                    raise SnapshotError(f"The archive holds an unexpected member {member.name!r}.",
                                        hint="It was not made by `archivist export`, or was altered.")
                target = staging / name
                target.parent.mkdir(parents=True, exist_ok=True)
                src = tar.extractfile(member)
                h = hashlib.sha256()
                with open(target, "wb") as out:
                    for block in iter(lambda: src.read(1 << 20), b""):
                        h.update(block)
                        out.write(block)
                if h.hexdigest() != expected[name]:
                    raise SnapshotError(f"Checksum mismatch for {name}: the archive was altered "
                                        "or damaged.", hint=_CORRUPT_HINT)
                seen.add(name)
    except (tarfile.TarError, EOFError, zlib.error, OSError) as exc:
        raise SnapshotError(f"{archive} is not a readable archive ({exc}).", hint=_CORRUPT_HINT)
    missing = sorted(set(expected) - seen)
    if missing:
        raise SnapshotError(f"The archive lacks {len(missing)} file(s) its manifest lists "
                            f"(e.g. {missing[0]}).", hint=_CORRUPT_HINT)
    return manifest


def _non_empty(index_dir: Path) -> bool:
    return index_dir.is_dir() and any(not _kept(p.name) for p in index_dir.iterdir())


def _vectors_onto_server(settings: Settings, staging: Path, force: bool) -> None:
    wanted = [n.chroma_collection for n in index_generations.every_current(staging).values()]
    taken = sorted(set(wanted) & set(collection_names(settings.chroma)))
    if taken and not force:
        raise SnapshotError(f"The Chroma server at {settings.chroma} already has the collection(s) "
                            f"{', '.join(taken)}.",
                            hint="Pass --force to replace them (the server keeps no copy of the "
                                 "old vectors), or point ARCHIVIST_CHROMA_URL at another server.")
    _copy_vectors(ChromaTarget(staging / "chroma"), settings.chroma, staging)
    shutil.rmtree(staging / "chroma", ignore_errors=True)  # on the server now, not in index_dir


def _state_into_database(settings: Settings, staging: Path, force: bool) -> None:
    """The keyword index, manifest and current generation of each collection, from the archive's
    SQLite files into PostgreSQL (nothing is embedded again); the files then leave the staging
    folder, as the vectors do for a Chroma server."""
    from ingest.manifest import Manifest
    from rag.storage.lexical_postgres import PostgresLexicalIndex
    from rag.storage.lexical_sqlite import SqliteLexicalIndex

    pointer = index_generations.Pointer(settings.index_dir, settings.db_url)
    try:
        wanted = index_generations.every_current(staging)
        if not force:
            taken = [collection for collection in wanted if pointer.recorded(collection)]
            if taken:
                raise SnapshotError(
                    f"The database already holds the collection(s) {', '.join(sorted(taken))}.",
                    hint="Pass --force to replace them, or point ARCHIVIST_DB_URL at another "
                         "database.")
        for collection, names in wanted.items():
            source, target = SqliteLexicalIndex(names.lexical_path), PostgresLexicalIndex(settings.db_url,
                                                                             names.chroma_collection)
            try:
                target.reset()
                for name in sorted(source.sources()):
                    target.replace_source(name, source.chunks_of(name))
                target.bump_version()  # replicas serving an older copy notice the change
            finally:
                source.close()
                target.close()
            Manifest.drop(settings, names)
            old, new = Manifest(names.manifest_path), Manifest.open(settings, names)
            try:
                new.copy_from(old)
            finally:
                old.close()
                new.close()
            pointer.set_active(collection, names.generation)
            names.remove_files()
    finally:
        pointer.close()


def import_index(settings: Settings, archive: Path, force: bool = False) -> dict:
    """Replace settings.index_dir with the archive's index; returns the archive's manifest.

    With a Chroma server the archive's vectors are copied onto it (replacing collections of the
    same names, which --force allows), and with a database the keyword index, manifests and
    generations go into it: an embedded index moves onto the servers this way."""
    index_dir = settings.index_dir
    if _non_empty(index_dir) and not force:  # cheap early refusal; checked again under the lock
        raise SnapshotError(f"{index_dir} already holds an index.",
                            hint="Import into an empty index folder, or pass --force to replace it "
                                 "(the current one is kept as a .bak folder until the import succeeds).")
    index_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{index_dir.name}.import-", dir=index_dir.parent))
    backup: Path | None = None
    try:
        manifest = verify_archive(archive, staging)
        with writer_lock(settings):
            if _non_empty(index_dir) and not force:
                raise SnapshotError(f"{index_dir} already holds an index.", hint="Pass --force to replace it.")
            if settings.chroma.remote:
                _vectors_onto_server(settings, staging, force)
            if settings.db_url:
                _state_into_database(settings, staging, force)
            forget_client(settings.chroma)
            index_dir.mkdir(exist_ok=True)  # the database's lock, unlike a lock file, makes none
            old = [p for p in index_dir.iterdir() if not _kept(p.name)]
            if old:
                backup = index_dir.parent / f"{index_dir.name}.bak-{time.strftime('%Y%m%d-%H%M%S')}"
                backup.mkdir()
            moved_old: list[Path] = []
            moved_new: list[Path] = []
            try:
                for p in old:
                    os.replace(p, backup / p.name)
                    moved_old.append(p)
                for p in staging.iterdir():
                    os.replace(p, index_dir / p.name)
                    moved_new.append(index_dir / p.name)
            except BaseException:  # put the old index back as it was
                for p in moved_new:
                    shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink(missing_ok=True)
                for p in moved_old:
                    os.replace(backup / p.name, p)
                raise
            forget_client(settings.chroma)
            manifest["restored"] = restore_choices(settings, manifest["collections"])
        if backup is not None:
            shutil.rmtree(backup, ignore_errors=True)
        return manifest
    finally:
        shutil.rmtree(staging, ignore_errors=True)
