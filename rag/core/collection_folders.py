"""Collections: separate knowledge bases inside one data folder.

The `default` collection is the data folder itself.  Any other collection is a sub-folder
`data/<name>/` holding a marker file `.collection` (made by `archivist collections create NAME`
or the API): explicit, so a folder of sub-folders that was one knowledge base stays one, and
visible on disk, so it survives copies and backups.  A collection folder belongs to its collection
only; the default collection skips it.

The marker may hold the collection's own choices, in TOML: `embed_model = "multilingual-e5-small"`
gives it an embedding model other than ARCHIVIST_EMBED_MODEL (README: "An embedding model per
collection").  The default collection's choices live in `data/.collection`.  An empty marker
chooses nothing, as markers made before choices existed are.
"""

from __future__ import annotations

import os
import re
import tomllib
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


def create(data_dir: Path, name: str, choices: dict[str, str] | None = None) -> Path:
    """Make `data/<name>/` a collection (the folder may already hold files), with `choices` in
    its marker."""
    check_name(name)
    if name == DEFAULT:
        if choices:
            write_choices(data_dir, name, choices)
        return data_dir
    path = data_dir / name
    if path.is_symlink() or (path.exists() and not path.is_dir()):
        raise ArchivistError(f"{path} exists and is not a folder.", hint="Pick another name.")
    path.mkdir(parents=True, exist_ok=True)
    if choices or not (path / MARKER).is_file():
        write_choices(path.parent, name, choices or {})
    return path


# What a marker may choose: its key -> what the value is.
CHOICES = {"embed_model": "the embedding model's name (`archivist models list`)"}


def _marker(data_dir: Path, name: str) -> Path:
    return (data_dir if name == DEFAULT else data_dir / name) / MARKER


def choices(data_dir: Path, name: str) -> dict[str, str]:
    """What the collection's marker chooses (empty when it chooses nothing)."""
    path = _marker(data_dir, name)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    try:
        found = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ArchivistError(f"{path} is not valid TOML ({exc}).",
                             hint='It may hold only lines like `embed_model = "multilingual-e5-'
                                  'small"`; an empty file chooses nothing.') from exc
    unknown = sorted(set(found) - set(CHOICES))
    if unknown or not all(isinstance(v, str) and v for v in found.values()):
        raise ArchivistError(f"{path} holds {', '.join(unknown) or 'an empty or non-text value'}, "
                             f"which a collection cannot choose.",
                             hint="Known: " + "; ".join(f"{k}: {v}" for k, v in CHOICES.items()))
    return found


def write_choices(data_dir: Path, name: str, chosen: dict[str, str]) -> None:
    """Replace the marker's choices in one rename, so a reader sees the old or the new ones."""
    if any(c in "".join(chosen.values()) for c in '"\\\n'):  # kept out of the TOML string
        raise ArchivistError("A collection's choice cannot hold quotes, backslashes or newlines.",
                             hint="Give the model's plain name, as `archivist models list` shows it.")
    path = _marker(data_dir, name)
    lines = "".join(f'{key} = "{value}"\n' for key, value in sorted(chosen.items())
                    if key in CHOICES and value)
    temporary = path.with_name(f"{MARKER}.{os.getpid()}.tmp")
    temporary.write_text(lines, encoding="utf-8")
    os.replace(temporary, path)
