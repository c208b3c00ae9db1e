"""Import torchmetrics without the two optional extras it loads for nothing: matplotlib and scipy.signal.

``import torchmetrics`` imports matplotlib.pyplot (for ``Metric.plot``) and
scipy.signal (to patch an alias for one third-party package) whenever they
are installed: about a second of a command's start on a 2-core machine
(``expresso train`` of the digits MLP, 1 epoch: 7.0-7.8 s with them,
6.3-6.8 s without), more than torch takes to train that MLP for an epoch. An expresso command plots no metric and computes
no audio metric, so before torchmetrics loads, ``expresso`` tells it those
two extras are missing, the way it behaves on a machine without them:

- ``Metric.plot`` raises torchmetrics' own "matplotlib is required" error;
  ``expresso plot`` draws with matplotlib itself and is unaffected;
- the ``scipy.signal.hamming`` alias (for SRMRpy) is not added.

Only the ``expresso`` command does this (``cli.main``), never ``import
expresso`` in a user's own script, and only for an extra not imported yet:
a process that has loaded matplotlib.pyplot already pays nothing more for it.
``EXPRESSO_FULL_TORCHMETRICS=1`` turns it off.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import os
import sys
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import Any

# torchmetrics.utilities.imports's flag -> the module whose import it guards
_FLAGS = {"_MATPLOTLIB_AVAILABLE": "matplotlib.pyplot", "_SCIPI_AVAILABLE": "scipy.signal"}


def _load_torchmetrics(loader: importlib.abc.Loader, module: ModuleType) -> None:
    """torchmetrics' __init__, asking lightning_utilities' ``package_available`` whether scipy is installed: it hears no.

    The answer decides only the scipy.signal alias; the original function is back once the module has run.
    """
    from lightning_utilities.core import imports

    original = imports.package_available
    imports.package_available = lambda name: (name != "scipy" or "scipy.signal" in sys.modules) and original(name)  # type: ignore[assignment]
    try:
        loader.exec_module(module)
    finally:
        imports.package_available = original
        if hasattr(module, "package_available"):
            setattr(module, "package_available", original)  # noqa: B010 (an attribute mypy cannot see)


def _load_flags(loader: importlib.abc.Loader, module: ModuleType) -> None:
    """torchmetrics' flag module, then each extra not imported yet marked as missing."""
    loader.exec_module(module)
    for flag, extra in _FLAGS.items():
        if hasattr(module, flag) and extra not in sys.modules:
            setattr(module, flag, False)


Load = Callable[[importlib.abc.Loader, ModuleType], None]
_LOADS: dict[str, Load] = {"torchmetrics": _load_torchmetrics, "torchmetrics.utilities.imports": _load_flags}


class _Loader(importlib.abc.Loader):
    """The module's own loader, run through one of ``_LOADS``."""

    def __init__(self, loader: importlib.abc.Loader, load: Load) -> None:
        self.loader, self.load = loader, load

    def __getattr__(self, name: str) -> Any:
        return getattr(self.loader, name)  # get_source, get_filename...: the file's own loader answers

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return self.loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        self.load(self.loader, module)


class _Finder(importlib.abc.MetaPathFinder):
    """Finds torchmetrics and its flag module as usual and loads them through ``_LOADS``; steps aside after."""

    def find_spec(
        self, name: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        load = _LOADS.get(name)
        if load is None:
            return None
        if name == "torchmetrics.utilities.imports":
            remove()  # the last of the two
        spec = importlib.machinery.PathFinder.find_spec(name, path, target)
        if spec is not None and spec.loader is not None:
            spec.loader = _Loader(spec.loader, load)
        return spec


_finder = _Finder()


def install() -> None:
    """Before torchmetrics is imported: load it without matplotlib.pyplot and scipy.signal (see the module doc)."""
    if os.environ.get("EXPRESSO_FULL_TORCHMETRICS") == "1" or "torchmetrics" in sys.modules or _finder in sys.meta_path:
        return
    sys.meta_path.insert(0, _finder)


def remove() -> None:
    """Put the import system back as it was (a no-op once torchmetrics' flags are loaded)."""
    if _finder in sys.meta_path:
        sys.meta_path.remove(_finder)
