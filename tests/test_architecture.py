"""The shape of the code: no import cycle in src/, and CONTRIBUTING.md's layer map is the one lint-imports checks.

``make test`` runs lint-imports on pyproject.toml's contracts; these tests keep
the written map and the enforced one from drifting apart, and catch the
cycles a layers contract cannot see (two modules of one package).
"""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

import grimp
import tomllib

ROOT = Path(__file__).resolve().parents[1]


def _contracts() -> list[dict]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]


def _cycles(graph: grimp.ImportGraph) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for imported in graph.find_modules_directly_imported_by(module):
            if imported not in index:
                visit(imported)
                low[module] = min(low[module], low[imported])
            elif imported in on_stack:
                low[module] = min(low[module], index[imported])
        if low[module] == index[module]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == module:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 10_000))
    try:
        for module in sorted(graph.modules):
            if module not in index:
                visit(module)
    finally:
        sys.setrecursionlimit(limit)
    return found


def test_no_import_cycle_anywhere_in_src():
    graph = grimp.build_graph("expresso")
    assert _cycles(graph) == []


def test_the_cycle_finder_finds_a_cycle(tmp_path, monkeypatch):
    package = tmp_path / "cyclic"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("from . import b\n")
    (package / "b.py").write_text("from . import a\n")
    (package / "c.py").write_text("from . import a\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert _cycles(grimp.build_graph("cyclic")) == [["cyclic.a", "cyclic.b"]]


def test_contributing_layer_map_is_the_enforced_one():
    (layers,) = [c["layers"] for c in _contracts() if c["type"] == "layers"]
    text = (ROOT / "CONTRIBUTING.md").read_text()
    block = re.search(r"```text\n# layers, top to bottom\n(.*?)```", text, re.S)
    assert block is not None, "CONTRIBUTING.md lost its layer map block"
    written = [re.sub(r"\s+#.*$", "", line).strip() for line in block.group(1).splitlines()]
    assert [line for line in written if line] == layers


def test_every_package_of_src_has_a_place_in_the_contracts():
    """A new package must be placed in the layer map (or a forbidden contract), not slip past the checks."""
    placed: set[str] = set()
    for contract in _contracts():
        for entry in contract.get("layers", []) + contract.get("source_modules", []):
            placed.update(name.strip() for name in entry.split("|"))
    packages = {
        f"expresso.{path.stem if path.is_file() else path.name}"
        for path in (ROOT / "src" / "expresso").iterdir()
        if (path.is_dir() and (path / "__init__.py").is_file()) or (path.suffix == ".py" and path.stem != "__init__")
    }
    unplaced = packages - placed - {"expresso.__main__"}
    assert unplaced == set()


def test_the_loop_fits_on_one_screen_per_level_in_the_order_of_its_drawing():
    """fit, the stage loop, the epoch loop and the batch step: each <= 40 lines, defined in the drawing's order."""
    source = (ROOT / "src" / "expresso" / "engine" / "trainer.py").read_text()
    (trainer,) = [node for node in ast.parse(source).body if isinstance(node, ast.ClassDef) and node.name == "Trainer"]
    methods = {node.name: node for node in trainer.body if isinstance(node, ast.FunctionDef)}
    levels = ["fit", "_run_stage", "_train_epoch", "_train_batch"]
    lengths = {name: methods[name].end_lineno - methods[name].lineno + 1 for name in levels}
    assert {name: n for name, n in lengths.items() if n > 40} == {}
    assert sorted(levels, key=lambda name: methods[name].lineno) == levels
