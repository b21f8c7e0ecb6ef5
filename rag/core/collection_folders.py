"""Collections: separate knowledge bases inside one data folder.

The `default` collection is the data folder itself.  Any other collection is a sub-folder
`data/<name>/` holding a marker file `.collection` (made by `archivist collections create NAME`
or the API): explicit, so a folder of sub-folders that was one knowledge base stays one, and
visible on disk, so it survives copies and backups.  A collection folder belongs to its collection
only; the default collection skips it.
"""

from __future__ import annotations

import re
from pathlib import Path

from rag.core.errors import ArchivistError, NotFoundError


class CollectionNameError(ArchivistError):
    """A collection name that is not a safe folder name."""


DEFAULT = "default"
MARKER = ".collection"
# The one definition of a collection name (also the settings' `collection` pattern).
COLLECTION_NAME = r"^[a-z0-9][a-z0-9_-]{0,62}$"
_NAME = re.compile(COLLECTION_NAME)


def check_name(name: str) -> str:
    if not _NAME.match(name or ""):
        raise CollectionNameError(f"{name!r} is not a valid collection name.",
                             hint="Use 1-63 lower-case letters, digits, '-' or '_', starting with a "
                                  "letter or digit, e.g. 'finance'.")
    return name


def names(data_dir: Path) -> list[str]:
    """`default` first, then every marked sub-folder, sorted."""
    found = []
    if data_dir.is_dir():
        for child in data_dir.iterdir():
            if (_NAME.match(child.name) and child.name != DEFAULT and not child.is_symlink()
                    and child.is_dir() and (child / MARKER).is_file()):
                found.append(child.name)
    return [DEFAULT, *sorted(found)]


def folder(data_dir: Path, name: str) -> Path:
    """The folder whose files make up the collection."""
    if name == DEFAULT:
        return data_dir
    if name not in names(data_dir):
        raise NotFoundError(f"No collection {name!r}.",
                            hint=f"Create it with `archivist collections create {name}`; existing: "
                                 f"{', '.join(names(data_dir))}.")
    return data_dir / name


def skipped(data_dir: Path, name: str) -> set[str]:
    """Top-level sub-folders the collection's scan must skip: the other collections' folders."""
    return set(names(data_dir)[1:]) if name == DEFAULT else set()


def create(data_dir: Path, name: str) -> Path:
    """Make `data/<name>/` a collection (the folder may already hold files)."""
    check_name(name)
    if name == DEFAULT:
        return data_dir
    path = data_dir / name
    if path.is_symlink() or (path.exists() and not path.is_dir()):
        raise ArchivistError(f"{path} exists and is not a folder.", hint="Pick another name.")
    path.mkdir(parents=True, exist_ok=True)
    (path / MARKER).touch()
    return path
