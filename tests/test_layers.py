"""The architecture's rules, checked on every import in the source (docs/architecture.md):
service/ -> ingest/ -> rag/, rag/'s sub-packages only import downwards, no import cycle, and the
tests of rag/ and ingest/ do not reach into service/."""

from __future__ import annotations

import pytest

from tests.import_graph import ROOT, cycles, graph, imported, modules

# Lowest first.  A module may import from its own layer and the layers before it.
LAYERS = ["rag.core", "rag.language", "rag.storage", "rag.audit", "rag.models", "rag.retrieval",
          "rag.answering", "rag.library", "ingest", "service"]


def layer(module: str) -> int:
    if module == "rag":
        return -1  # the package's docstring only
    return max(i for i, prefix in enumerate(LAYERS)
               if module == prefix or module.startswith(prefix + "."))


@pytest.fixture(scope="module")
def edges() -> dict[str, set[str]]:
    return graph()


def test_every_module_belongs_to_a_layer(edges):
    loose = [m for m in edges if m.startswith("rag.") and m.count(".") == 1
             and m != "rag.library" and not any(m == p for p in LAYERS)]
    assert loose == [], f"modules directly under rag/ outside the sub-packages: {loose}"


def test_imports_only_point_down(edges):
    upward = sorted(f"{source} imports {target}" for source, targets in edges.items()
                    for target in targets if layer(target) > layer(source))
    assert upward == [], "imports that point up the layers:\n" + "\n".join(upward)


def test_no_import_cycles(edges):
    assert cycles(edges) == []


def test_the_tests_of_rag_and_ingest_do_not_import_service():
    known = set(modules())
    reaching = sorted(f"{path.relative_to(ROOT)} imports {target}"
                      for folder in ("tests/rag", "tests/ingest")
                      for path in sorted((ROOT / folder).rglob("*.py"))
                      for target in imported(path, "tests", known) if target.startswith("service"))
    assert reaching == [], "\n".join(reaching)


def test_the_checker_sees_an_upward_import(tmp_path):
    """The rules above are only as good as the import reader: a lazy import inside a function
    that points up is found."""
    package = tmp_path / "rag" / "core"
    package.mkdir(parents=True)
    (tmp_path / "rag" / "__init__.py").write_text("")
    (package / "__init__.py").write_text("")
    (tmp_path / "rag" / "answering").mkdir()
    (tmp_path / "rag" / "answering" / "__init__.py").write_text("")
    (tmp_path / "rag" / "answering" / "answerer.py").write_text("")
    (package / "settings.py").write_text("def f():\n    from rag.answering import answerer\n")
    found = graph(("rag",), tmp_path)
    assert found["rag.core.settings"] == {"rag.answering.answerer"}
    assert layer("rag.answering.answerer") > layer("rag.core.settings")
