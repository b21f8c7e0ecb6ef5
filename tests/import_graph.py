"""The project's import graph, read from the source (every import, module-level or inside a
function), for the layer test (tests/test_layers.py) and for a count of its shape:

    python -m tests.import_graph [rag]     # modules, arrows, floors, arrows back, cycles

A module's "floor" is the length of the longest chain of imports below it; an arrow back is one
that a depth-first walk finds pointing at a module still being walked (each cycle needs one).
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("rag", "ingest", "service")


def module_name(path: Path, root: Path = ROOT) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules(packages=PACKAGES, root: Path = ROOT) -> dict[str, Path]:
    return {module_name(p, root): p for package in packages
            for p in sorted((root / package).rglob("*.py"))}


def imported(path: Path, name: str, known: set[str]) -> set[str]:
    """The project modules `path` (module `name`) imports: `from a.b import c` counts as a.b.c
    when that is a module, else as a.b."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            candidates = [[alias.name] for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join(parts + ([base] if base else []))
            candidates = [[f"{base}.{alias.name}", base] for alias in node.names]
        else:
            continue
        for names in candidates:
            target = next((n for n in names if n in known), None)
            if target is None:  # `import a.b.c` of a package path: its longest known prefix
                parts = names[-1].split(".")
                target = next((".".join(parts[:i]) for i in range(len(parts), 0, -1)
                               if ".".join(parts[:i]) in known), None)
            if target and target != name:
                found.add(target)
    return found


def graph(packages=PACKAGES, root: Path = ROOT) -> dict[str, set[str]]:
    found = modules(packages, root)
    known = set(found)
    return {name: imported(path, name, known) for name, path in found.items()}


def back_arrows(edges: dict[str, set[str]]) -> list[tuple[str, str]]:
    """Arrows into a module whose walk has not finished: each closes a cycle."""
    state: dict[str, int] = {}  # 1 walking, 2 done
    back = []

    def walk(node: str) -> None:
        state[node] = 1
        for target in sorted(edges[node]):
            if state.get(target) == 1:
                back.append((node, target))
            elif target not in state:
                walk(target)
        state[node] = 2

    for node in sorted(edges):
        if node not in state:
            walk(node)
    return back


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups = []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in edges[node]:
            if target not in index:
                connect(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for node in sorted(edges):
        if node not in index:
            connect(node)
    return groups


def floors(edges: dict[str, set[str]]) -> dict[str, int]:
    """Each module's floor: 0 for one that imports nothing, else one above its highest import
    (arrows back left out, so a cycle does not make it endless)."""
    back = set(back_arrows(edges))
    floor: dict[str, int] = {}

    def height(node: str) -> int:
        if node not in floor:
            below = [height(t) for t in edges[node] if (node, t) not in back]
            floor[node] = 1 + max(below) if below else 0
        return floor[node]

    for node in edges:
        height(node)
    return floor


def shape(edges: dict[str, set[str]]) -> dict[str, int]:
    levels = floors(edges)
    return {"modules": len(edges), "arrows": sum(len(t) for t in edges.values()),
            "floors": max(levels.values()) + 1 if levels else 0,
            "arrows back": len(back_arrows(edges)), "cycles": len(cycles(edges))}


if __name__ == "__main__":
    packages = tuple(sys.argv[1:]) or PACKAGES
    edges = graph(packages)
    print(", ".join(f"{value} {key}" for key, value in shape(edges).items()))
    for group in cycles(edges):
        print("cycle:", " -> ".join(group))
