"""Which collections the app serves, and the engine of each.

The seam for collections: an app with `state.library` (`names()`, `engine(name)`, raising
NotFoundError) serves all of them; an app with only `state.engine` serves that one, under its
collection name ("default" unless ARCHIVIST_COLLECTION says otherwise).
"""

from __future__ import annotations

from typing import Any

from fastapi import Request

from rag.errors import NotFoundError
from service.engine import Engine


class Collections:
    def __init__(self, app: Any) -> None:
        self._state = app.state

    def names(self) -> list[str]:
        library = getattr(self._state, "library", None)
        if library is not None:
            return list(library.names())
        return [self._state.engine.settings.collection]

    def engine(self, name: str) -> Engine:
        library = getattr(self._state, "library", None)
        if library is not None:
            engine = library.engine(name)
        elif name == self._state.engine.settings.collection:
            engine = self._state.engine
        else:
            raise NotFoundError(f"No collection {name!r}.",
                                hint=f"Use one of: {', '.join(self.names())} (GET /v1/models).")
        metrics = getattr(self._state, "metrics", None)
        if metrics is not None:
            metrics.watch(engine)  # count its ingests from now on
        return engine

    def engines(self) -> list[tuple[str, Engine]]:
        return [(name, self.engine(name)) for name in self.names()]


def get_collections(request: Request) -> Collections:
    return Collections(request.app)
