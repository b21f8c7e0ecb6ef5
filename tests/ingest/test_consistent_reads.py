"""Searches made while an ingest is writing see each file whole, old or new, never half: not the
new chunks before the switch, not the old version minus its deleted chunks after it.

The check runs at every write step of a real ingest (the fault-injection points, patched to
search instead of kill), over a real Chroma and lexical index, with the fake embedder."""

from __future__ import annotations

import pytest

from ingest import faults
from tests.workspace import Workspace
from tests.conftest import make_settings
from tests.fakes import FakeEmbedder

WORDS = "valve pump gauge filter boiler turbine rotor bearing sensor cable relay switch".split()


def document(name: str, parts: range, changed: set[int] = frozenset()) -> str:
    """A file of distinct sections; every section mentions `name` so one query finds them all."""
    sections = []
    for i in parts:
        verb = "replaces" if i in changed else "inspects"
        words = " ".join(WORDS[(i + j) % len(WORDS)] for j in range(6))
        sections.append(f"## Step {i}\n\nThe {name} crew {verb} the {words} at station {i} "
                        f"before shift {i * 7} ends.")
    return "\n\n".join(sections) + "\n"


def view(ws: Workspace, names: list[str]) -> dict[str, tuple[set[str], set[str | None]]]:
    """Per file: the chunk ids a reader gets (hits and the passages widened around them) and the
    file versions (content hashes) they come from."""
    seen: dict[str, tuple[set[str], set[str | None]]] = {}
    retriever = ws.retriever()
    for name in names:
        hits = retriever.search(f"{name} crew station shift", top_k=100)
        for passage in retriever.widen(hits, ws.settings.answer.context_neighbours):
            for chunk in (passage.hit.chunk, *passage.chunks):
                ids, versions = seen.setdefault(chunk.source, (set(), set()))
                ids.add(chunk.chunk_id)
                versions.add(chunk.file_hash)
    return seen


@pytest.fixture
def ws(tmp_path):
    settings = make_settings(tmp_path, chunk_tokens=32, chunk_overlap_tokens=4, min_score=0.0,
                             min_lexical=0.0, refuse_unknown_names=False)
    settings.data_dir.mkdir(parents=True)
    return Workspace.of(settings, embedder=FakeEmbedder())


def test_every_write_step_of_an_ingest_shows_each_file_old_or_new(ws, monkeypatch):
    data = ws.settings.data_dir
    (data / "alpha.md").write_text(document("alpha", range(12)))
    (data / "beta.md").write_text(document("beta", range(6)))
    ws.indexer.ingest()
    before = view(ws, ["alpha", "beta"])
    assert len(before["alpha.md"][0]) > 6  # many chunks: a half view would show

    # alpha: sections changed, dropped and added (some chunks shared with the old version);
    # beta: deleted; gamma: new.
    (data / "alpha.md").write_text(document("alpha", range(2, 15), changed={4, 5, 9}))
    (data / "beta.md").unlink()
    (data / "gamma.md").write_text(document("gamma", range(5)))

    checked: list[str] = []
    states: dict[str, list[str]] = {"alpha.md": [], "beta.md": [], "gamma.md": []}
    expected_after: dict = {}

    def search_now(point: str) -> None:
        checked.append(point)
        now = view(ws, ["alpha", "beta", "gamma"])
        for source, versions in states.items():
            ids, hashes = now.get(source, (set(), set()))
            assert len(hashes) <= 1, f"{source} mixes versions at {point}"
            if not ids:
                versions.append("absent")
            elif ids == before.get(source, (None,))[0]:
                versions.append("old")
            else:
                versions.append("new")
                expected_after.setdefault(source, set()).add(frozenset(ids))

    monkeypatch.setattr(faults, "reach", search_now)
    ws.indexer.ingest()
    monkeypatch.undo()
    after = view(ws, ["alpha", "gamma"])

    assert {"after_upsert", "after_lexical", "after_stale_delete", "before_manifest"} <= set(checked)
    # a "new" view must be the whole new version, every time it was seen
    for source, views in expected_after.items():
        assert views == {frozenset(after[source][0])}, f"{source} was seen half-written"
    assert after["alpha.md"][0] != before["alpha.md"][0]
    assert "beta.md" not in view(ws, ["beta"])
    # each file goes old -> new (or absent -> new, old -> absent) once, never back
    order = {"alpha.md": ["old", "new"], "beta.md": ["old", "absent"], "gamma.md": ["absent", "new"]}
    for source, versions in states.items():
        steps = [v for i, v in enumerate(versions) if i == 0 or versions[i - 1] != v]
        assert steps == order[source], f"{source}: {versions}"


def test_hits_widened_after_the_file_changed_keep_their_own_version(ws):
    data = ws.settings.data_dir
    (data / "alpha.md").write_text(document("alpha", range(12)))
    ws.indexer.ingest()
    retriever = ws.retriever()
    hits = retriever.search("alpha crew station shift", top_k=3)
    old_hash = hits[0].chunk.file_hash
    (data / "alpha.md").write_text(document("alpha", range(12), changed={3, 4, 5, 6, 7}))
    ws.indexer.ingest()  # between a search and the widening of its hits
    passages = retriever.widen(hits, neighbours=2)
    assert passages and {c.file_hash for p in passages for c in p.chunks} == {old_hash}
