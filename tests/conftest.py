"""Shared fixtures.  The whole suite runs with outbound connections blocked (loopback only)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Iterator

import pytest

from rag.core.offline import NetworkGuard, enforce_offline
from rag.core.settings import Settings
from rag.library import Library
from rag.models.loaded import Models
from tests.corpus import write_corpus
from tests.fakes import FakeEmbedder
from tests.postgres_server import db_url, postgres_server, postgres_url  # noqa: F401 (fixtures)

enforce_offline()  # before any test imports a model library
_GUARD = NetworkGuard().__enter__()


@pytest.fixture(autouse=True)
def no_network() -> Iterator[None]:
    """Fail the test that made any non-loopback connection attempt, naming the culprit."""
    _GUARD.attempts.clear()
    yield
    assert not _GUARD.attempts, f"network access attempted: {_GUARD.attempts}"


@pytest.fixture(autouse=True)
def isolated_config(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No developer's archivist.toml or ARCHIVIST_* variables leak into a test."""
    import os

    for key in list(os.environ):
        if key.startswith("ARCHIVIST_"):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)


@pytest.fixture(scope="session")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The multi-format test corpus (read-only: copy it before changing files)."""
    return write_corpus(tmp_path_factory.mktemp("corpus"))


@pytest.fixture
def data_dir(corpus: Path, tmp_path: Path) -> Path:
    """A private, writable copy of the corpus."""
    return Path(shutil.copytree(corpus, tmp_path / "data"))


def make_settings(root: Path, **overrides) -> Settings:
    """Settings over root/data and root/index; the folder watcher is off unless asked for."""
    return Settings(data_dir=root / "data", index_dir=root / "index", **{"watch": False, **overrides})


def make_library(root: Path, embedder=None, generator=None, **overrides) -> Library:
    """A Library over root/data and root/index with these models (None: the configured ones)."""
    settings = make_settings(root, **overrides)
    return Library(settings, Models(settings, embedder=embedder, generator=generator))


@pytest.fixture(scope="session")
def real_embedder():
    from rag.models.embedder import SentenceTransformerEmbedder
    from rag.models.files import resolve_embed_model

    return SentenceTransformerEmbedder(resolve_embed_model("all-MiniLM-L6-v2"), "all-MiniLM-L6-v2")


@pytest.fixture(scope="session")
def real_generator():
    from rag.models.files import resolve_llm_model
    from rag.models.generator import LlamaCppGenerator

    generator = LlamaCppGenerator(resolve_llm_model(None), n_ctx=4096, n_threads=None, n_gpu_layers=0)
    yield generator
    generator.close()


@pytest.fixture(scope="session")
def ingested(tmp_path_factory, corpus, real_embedder, real_generator):
    """The test corpus's collection, ingested once, with the real models (shared: do not write)."""
    from tests.workspace import Workspace

    root = tmp_path_factory.mktemp("ingested")
    shutil.copytree(corpus, root / "data")
    ws = Workspace.make(root, real_embedder, real_generator)
    report = ws.indexer.ingest()
    assert report.failed == 0, report.failures
    return ws


@pytest.fixture
def fake_embedder() -> FakeEmbedder:
    return FakeEmbedder()



@pytest.fixture(scope="session")
def e5_embedder():
    """multilingual-e5-small as `auto` runs it here: its ONNX export (made by `make install`)."""
    from rag.core.settings import Settings
    from rag.models.loaded import load_embedder

    return load_embedder(Settings(embed_model="multilingual-e5-small"))
