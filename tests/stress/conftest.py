"""The stress suite: short versions run always; tests marked `stress` only with ARCHIVIST_STRESS=1
(`make stress`)."""

from __future__ import annotations

import os

import pytest


def pytest_collection_modifyitems(config, items):
    if os.environ.get("ARCHIVIST_STRESS") == "1":
        return
    skip = pytest.mark.skip(reason="long stress test: run `make stress` (ARCHIVIST_STRESS=1)")
    for item in items:
        if item.get_closest_marker("stress"):
            item.add_marker(skip)
