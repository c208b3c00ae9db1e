"""The public API is complete and documented: what the docs import is exported, every public class says why it exists."""

from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "expresso"
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def _public_classes() -> list[str]:
    found = []
    for path in sorted(SRC.rglob("*.py")):
        if any(part.startswith("_") and part != "__init__.py" for part in path.relative_to(SRC).parts):
            continue
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.ClassDef) and not node.name.startswith("_") and not ast.get_docstring(node):
                found.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name}")
    return found


def test_every_public_class_has_a_docstring():
    assert _public_classes() == []


@pytest.mark.parametrize("package", ["expresso", "expresso.engine", "expresso.callbacks", "expresso.loggers"])
def test_all_names_resolve(package):
    module = importlib.import_module(package)
    missing = [name for name in module.__all__ if not hasattr(module, name)]
    assert missing == []


def test_what_the_docs_import_from_expresso_is_exported():
    import expresso

    named = set()
    for path in DOCS:
        for match in re.finditer(r"^from expresso import ([\w, ]+)$", path.read_text(), re.M):
            named.update(name.strip() for name in match.group(1).split(","))
    assert named, "the docs import nothing from expresso: the pattern no longer matches them"
    assert named - set(expresso.__all__) == set()


def test_the_engine_names_users_raise_or_build_are_exported_at_the_top():
    """The README tells callbacks to raise these and graphs to be made of these: one import, `from expresso import ...`."""
    import expresso

    wanted = {"SkipBatch", "StopEpoch", "StopTraining", "Pipeline", "Stage", "Graph", "Node", "Event", "BadInput"}
    assert wanted - set(expresso.__all__) == set()


def test_the_run_analysis_functions_are_exported_under_both_names():
    """``load_runs``/``load_history`` and the gin template's ``load_C``/``load_H``: one import, the same functions."""
    import expresso
    from expresso.analysis import frames

    assert {"load_runs", "load_history", "load_C", "load_H"} <= set(expresso.__all__)
    assert [expresso.load_runs, expresso.load_history] == [frames.load_runs, frames.load_history]
    assert [expresso.load_C, expresso.load_H] == [frames.load_runs, frames.load_history]
