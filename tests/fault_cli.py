"""`python -m tests.fault_cli ingest ...`: the real `archivist` CLI in a child process, with the
fake embedder wired in so that a crash test does not spend seconds per run loading the model.

Everything else (settings from ARCHIVIST_* variables, the ingest lock, Chroma, the lexical index,
the manifest, ARCHIVIST_FAULT) is the production code path.
"""

from __future__ import annotations

import sys


def main() -> int:
    from service import cli, library
    from service.engine import Engine
    from tests.fakes import FakeEmbedder

    class FakeEmbedderEngine(Engine):
        def __init__(self, settings, **kwargs):
            super().__init__(settings, embedder=FakeEmbedder(), **kwargs)

    library.Engine = FakeEmbedderEngine  # the name cli.main()'s Library constructs engines by
    return cli.main(sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
