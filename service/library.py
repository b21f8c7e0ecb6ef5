"""Every collection of one data folder, each an Engine, sharing one copy of the models.

The HTTP app and the CLI ask the Library for a collection by name; an unknown name is a 404 with
the list of existing ones.  Engines are made on first use and kept.
"""

from __future__ import annotations

import threading

from ingest import collections
from rag.settings import Settings
from service.engine import Engine, Models


class Library:
    def __init__(self, settings: Settings, default: Engine | None = None) -> None:
        """`default`: a ready Engine for the default collection (tests pass one with fakes);
        the other collections share its models."""
        self.settings = settings
        base = settings.model_copy(update={"collection": collections.DEFAULT})
        self.default = default or Engine(base)
        self.models: Models = self.default.models
        self._engines: dict[str, Engine] = {collections.DEFAULT: self.default}
        self._lock = threading.Lock()

    def names(self) -> list[str]:
        return collections.names(self.settings.data_dir)

    def engine(self, name: str | None = None) -> Engine:
        """The named collection's Engine (the configured default when None)."""
        name = name or self.settings.collection
        with self._lock:
            engine = self._engines.get(name)
            if engine is None:
                collections.folder(self.settings.data_dir, collections.check_name(name))  # 404
                engine = Engine(self.settings.model_copy(update={"collection": name}),
                                models=self.models)
                engine.ingest_listeners = self.default.ingest_listeners  # one set of observers
                self._engines[name] = engine
            return engine

    def create(self, name: str) -> Engine:
        collections.create(self.settings.data_dir, name)
        return self.engine(name)

    def close(self) -> None:
        with self._lock:
            for engine in self._engines.values():
                engine.close()
