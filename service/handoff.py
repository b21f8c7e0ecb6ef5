"""While `archivist serve` runs, the server process owns the index: others hand it their writes.

Chroma's embedded store keeps its vector index in the memory of the process that opened it. A
second process writing the same folder leaves the server's copy stale: the server then misses new
chunks and fails searches (chromadb 1.5: "Error finding id", seen with a CLI ingest beside a
running server).  So a serving process registers itself in `index_dir/server.json` (its pid, a
loopback URL and a random token; readable by the owner only), and:

- `archivist ingest` and `archivist reindex` find the registration and ask the server to do the
  work (POST /v1/ingest or /v1/reindex with the token), printing its report as their own;
- commands that replace the index files under it (`ingest --rebuild`, `import`) refuse while a
  server is registered, saying to stop it first;
- a second `archivist serve` on the same index refuses to start.

Anyone who can read server.json can already rewrite the index files, so the token grants nothing
new.  A registration left by a killed server is recognised by its dead pid and ignored.

None of this applies when a Chroma server holds the vectors and PostgreSQL the rest
(`Settings.shares_state`): nothing then lives in one process's memory, writers serialize on
PostgreSQL's advisory lock (rag/storage/database.py), each replica notices a new index version at
its next request, and any number of servers and CLI commands share the index directly.
"""

from __future__ import annotations

import hmac
import json
import os
import secrets
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from rag.core.errors import ArchivistError
from rag.core.settings import Settings

REGISTRY = "server.json"
TOKEN_HEADER = "X-Archivist-Local-Token"


@dataclass(frozen=True)
class ServerInfo:
    pid: int
    url: str
    token: str


def _path(settings: Settings) -> Path:
    return settings.index_dir / REGISTRY


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True


def running_server(settings: Settings) -> ServerInfo | None:
    """The live server registered on this index, if any (never one with shared state: commands
    then write to the servers themselves)."""
    if settings.shares_state:
        return None
    try:
        raw = json.loads(_path(settings).read_text(encoding="utf-8"))
        info = ServerInfo(int(raw["pid"]), str(raw["url"]), str(raw["token"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return info if _alive(info.pid) else None


def ensure_not_served(settings: Settings) -> None:
    """Refuse a second server on one index (checked before start-up, and again on registering)."""
    other = running_server(settings)
    if other is not None and other.pid != os.getpid():
        raise ArchivistError(
            f"Another archivist server (pid {other.pid}, {other.url}) is already serving the index "
            f"in {settings.index_dir}; two processes cannot share its embedded vector store.",
            hint="Use that server, or stop it first.")


@contextmanager
def register(settings: Settings, host: str, port: int) -> Iterator[str | None]:
    """Register this process as the index's server for the duration; yields the token.  The app's
    lifespan holds it: uvicorn ends a process stopped by a signal by raising the signal again once
    the app has shut down, so code after uvicorn.run() would never run.  With shared state
    nothing is registered: replicas need no owner (yields None)."""
    if settings.shares_state:
        yield None
        return
    ensure_not_served(settings)
    local = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    info = {"pid": os.getpid(), "url": f"http://{'[' + local + ']' if ':' in local else local}:{port}",
            "token": secrets.token_urlsafe(32)}
    path = _path(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        json.dump(info, out)
    os.replace(tmp, path)
    try:
        yield info["token"]
    finally:
        mine = running_server(settings)
        if mine is not None and mine.pid == os.getpid():
            path.unlink(missing_ok=True)


def token_matches(expected: str | None, given: str | None) -> bool:
    return bool(expected and given) and hmac.compare_digest(expected, given)


def refuse_if_serving(settings: Settings, what: str) -> None:
    """For commands that replace the index wholesale: the server would keep serving the old one."""
    server = running_server(settings)
    if server is not None:
        raise ArchivistError(
            f"An archivist server (pid {server.pid}, {server.url}) is serving this index; "
            f"{what} cannot run beside it.",
            hint="Stop the server, run the command, then start the server again.")


def run_via(server: ServerInfo, work: str, collection: str | None,
            timeout_s: float = 24 * 3600, body: dict | None = None) -> dict:
    """Ask the server to `work` ("ingest" or "reindex") one collection, or all; returns its JSON
    report.  `body`: another request body (`archivist models use` posts to "admin/model")."""
    import httpx

    if body is None:
        body = {"collection": collection} if collection else {}
    starting_until = time.monotonic() + 120  # it registers before loading its models
    while True:
        try:
            reply = httpx.post(f"{server.url}/v1/{work}", json=body,
                               headers={TOKEN_HEADER: server.token},
                               timeout=httpx.Timeout(timeout_s, connect=10))
            break
        except httpx.ConnectError as exc:
            if time.monotonic() < starting_until and _alive(server.pid):
                time.sleep(0.5)
                continue
            raise ArchivistError(
                f"The archivist server (pid {server.pid}) registered at {server.url} does not "
                f"accept connections ({exc}).",
                hint="If it hangs, stop it; a stopped server's registration is ignored.") from exc
        except httpx.HTTPError as exc:
            raise ArchivistError(
                f"The archivist server (pid {server.pid}) at {server.url} failed to answer "
                f"({type(exc).__name__}: {exc}).",
                hint="Its log says why; `archivist ingest` again resumes where it stopped.") from exc
    if reply.status_code != 200:
        try:
            detail = reply.json()
        except ValueError:
            detail = {"detail": reply.text[:300]}
        raise ArchivistError(f"The server refused the {work} ({reply.status_code}): "
                             f"{detail.get('detail')}", hint=detail.get("hint"))
    return reply.json()
