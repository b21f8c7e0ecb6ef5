"""The catalog of known-good chat models (rag/models/catalog.toml): pinned sizes, sha256 and
sources.

`archivist models check` compares each catalogued file present in the models folder (and the
bundled one) with its pinned size and sha256; rag/models/pull.py fetches catalogued files.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rag.core.errors import ArchivistError, ConfigError
from rag.models.repository import ModelRepository

DEFAULT_CATALOG = Path(__file__).with_name("catalog.toml")


@dataclass(frozen=True)
class Part:
    package: str
    version: str
    path: str  # the data file inside the installed package, e.g. pkg/data/part01.bin
    bytes: int | None = None
    sha256: str | None = None

    @property
    def requirement(self) -> str:
        return f"{self.package}=={self.version}"


@dataclass(frozen=True)
class CatalogEntry:
    name: str
    file: str
    bytes: int
    sha256: str
    source: str
    parts: tuple[Part, ...]
    description: str = ""


def load_catalog(path: Path | None = None) -> dict[str, CatalogEntry]:
    path = path or DEFAULT_CATALOG
    try:
        data = tomllib.loads(path.read_text())
        entries = {}
        for raw in data.get("model", []):
            parts = tuple(Part(**p) for p in raw.pop("part"))
            entries[raw["name"]] = CatalogEntry(parts=parts, **raw)
    except (OSError, tomllib.TOMLDecodeError, TypeError, KeyError) as exc:
        raise ConfigError(f"The model catalog {path} is unreadable: {exc}",
                          hint="Each [[model]] needs name, file, bytes, sha256, source and "
                               "[[model.part]] tables (package, version, path).") from exc
    return entries


def entry(catalog: dict[str, CatalogEntry], name: str) -> CatalogEntry:
    found = catalog.get(name.removesuffix(".gguf"))
    if found is None:
        raise ArchivistError(f"{name!r} is not in the model catalog.",
                             hint="Catalogued: " + ", ".join(sorted(catalog)) + ".")
    return found


def check(repo: ModelRepository, catalog: dict[str, CatalogEntry]) -> list[dict[str, Any]]:
    """Each catalogued model file present: its size and sha256 against the pins (hashed anew,
    not from the cache: a check that trusts the cache checks nothing)."""
    from rag.models.files import file_sha256

    by_file = {e.file: e for e in catalog.values()}
    rows = []
    for model in repo.files():
        pinned = by_file.get(model.path.name)
        if pinned is None:
            rows.append({"name": model.name, "path": str(model.path), "status": "not catalogued"})
            continue
        size = model.path.stat().st_size
        digest = file_sha256(model.path)
        problems = []
        if size != pinned.bytes:
            problems.append(f"{size} bytes, catalog says {pinned.bytes}")
        if digest != pinned.sha256:
            problems.append(f"sha256 {digest}, catalog says {pinned.sha256}")
        rows.append({"name": model.name, "path": str(model.path), "bytes": size, "sha256": digest,
                     "status": "mismatch: " + "; ".join(problems) if problems else "ok"})
    return rows
