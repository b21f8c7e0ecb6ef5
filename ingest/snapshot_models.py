"""The embedding model of each collection in a snapshot (ingest/snapshot.py): named in the
manifest at export, written back to the collection's marker at import.  A model choice lives in
the marker under data/, which a snapshot does not hold; without it an index built with
multilingual-e5-small would be read with the configured model and refused until a reindex."""

from __future__ import annotations

from rag.core import collection_folders
from rag.core.errors import ArchivistError
from rag.core.settings import Settings


def _choices(settings: Settings, name: str) -> dict[str, str]:
    try:
        return collection_folders.choices(settings.data_dir, name)
    except ArchivistError:  # a broken marker: the configured model is what reads the index
        return {}


def chosen_model(settings: Settings, name: str) -> str:
    return _choices(settings, name).get("embed_model") or settings.embedding.embed_model


def restore_choices(settings: Settings, collections: dict[str, dict]) -> dict[str, list[str]]:
    """Give each collection the embedding model its archived vectors were made with, where its
    marker says otherwise.  A collection whose folder is missing is only named: creating an
    empty one would make the next ingest delete its chunks."""
    done: dict[str, list[str]] = {"chosen": [], "missing": []}
    present = collection_folders.names(settings.data_dir)
    for name, entry in collections.items():
        model = entry.get("embed_model")  # archives made before models were chosen have none
        if not model:
            continue
        if name not in present:
            done["missing"].append(name)
        elif chosen_model(settings, name) != model:
            chosen = {**_choices(settings, name), "embed_model": model}
            collection_folders.write_choices(settings.data_dir, name, chosen)
            done["chosen"].append(f"{name}: {model}")
    return done
