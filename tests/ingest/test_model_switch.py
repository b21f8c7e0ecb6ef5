"""Switching the embedding model of an indexed folder, with the real models: all-MiniLM-L6-v2 to
multilingual-e5-small.  The old index is refused by name until `reindex`; after it an English
question finds the Chinese passage that answers it, with e5's own tuned settings."""

from __future__ import annotations

import pytest

from rag.core.errors import IndexMismatchError
from tests.conftest import make_settings
from tests.workspace import Workspace

FILES = {
    "zh/rmdir.md": "# rmdir\n\nrmdir 命令用于删除空目录；目录里还有文件时，它会报错并拒绝删除。\n",
    "en/mkdir.md": "# mkdir\n\nmkdir creates a new folder, and with -p also its missing parents.\n",
    "en/mv.md": "# mv\n\nmv moves or renames files and folders.\n",
    "en/rm.md": "# rm\n\nrm deletes files; with -r it deletes folders and everything in them.\n",
}
QUESTION = "how do I remove an empty directory"


@pytest.fixture
def folder(tmp_path):
    for name, text in FILES.items():
        path = tmp_path / "data" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return tmp_path


def test_ingest_reindex_and_search_across_the_model_switch(folder, real_embedder, e5_embedder):
    minilm = Workspace.of(make_settings(folder, embed_model="all-MiniLM-L6-v2"), embedder=real_embedder)
    assert minilm.indexer.ingest().added == len(FILES)
    assert minilm.assistant.search(QUESTION)
    minilm.library.close()

    e5 = Workspace.of(make_settings(folder, embed_model="multilingual-e5-small"), embedder=e5_embedder)
    assert e5.settings.retrieval.language_offset > 0  # its tuned settings, not MiniLM's
    with pytest.raises(IndexMismatchError, match="reindex"):
        e5.assistant.search(QUESTION)

    e5.indexer.reindex()
    hits = e5.assistant.search(QUESTION)
    assert hits[0].source == "zh/rmdir.md"
    assert e5.store.tags_scripts and e5.store.count() == len(FILES)
    assert e5.assistant.search("怎么删除一个空目录")[0].source == "zh/rmdir.md"
    e5.library.close()
