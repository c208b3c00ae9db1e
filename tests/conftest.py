"""Shared fixtures: config files written under tmp_path, and no state leaking between tests.

Tests build every config they read in pytest's ``tmp_path``; nothing here
reads ``examples/``.
"""

from __future__ import annotations

import importlib
import sys
import textwrap
import threading
from collections.abc import Callable
from pathlib import Path

import pytest


@pytest.fixture
def write(tmp_path: Path) -> Callable[[dict], Path]:
    """``write({"configs/a.yaml": "...", ...})`` writes the files (dedented) and returns tmp_path."""

    def write_files(files: dict) -> Path:
        for relative, text in files.items():
            path = tmp_path / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(textwrap.dedent(text), encoding="utf-8")
        # Folders created within the same second can fool the import system's cache.
        importlib.invalidate_caches()
        return tmp_path

    return write_files


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run the test with tmp_path as the working directory (messages show paths relative to it)."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture(autouse=True)
def _isolated_imports(tmp_path_factory: pytest.TempPathFactory):
    """Forget user modules imported from pytest's temporary folders and restore sys.path after each test.

    ``load_config(check=True)`` puts the user's project folder on sys.path and
    imports ``my_project.models`` from it; the next test's ``my_project`` lives
    in another tmp_path and must not find the previous one cached.
    """
    saved_path = list(sys.path)
    yield
    sys.path[:] = saved_path
    base = tmp_path_factory.getbasetemp()
    roots = (str(base), str(base.resolve()))
    for name, module in list(sys.modules.items()):
        if name.startswith("_expresso_user_") or _loaded_from(module, roots):
            del sys.modules[name]


def _loaded_from(module, roots: tuple) -> bool:
    file = getattr(module, "__file__", None)
    if isinstance(file, str):
        return file.startswith(roots)
    path = getattr(module, "__path__", None)  # a namespace package has a path but no file
    try:
        return any(str(folder).startswith(roots) for folder in path or ())
    except TypeError:  # some extension modules expose a __path__ that is not a list
        return False


@pytest.fixture(autouse=True)
def _curves_drawn():
    """A fit's curves.png is drawn on a thread (callbacks/learning_curves.py): each test's ends with the test, so
    none logs into, or draws beside, the next test (which may hide matplotlib)."""
    yield
    for thread in threading.enumerate():
        if thread.name == "expresso-curves":
            thread.join()
