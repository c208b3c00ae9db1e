"""Python config files, and the experiment folders of torch-lab's layout built on them.

Every ``.py`` config runs as a module of a package made for its folder, so
it may import its neighbours: ``from .base import hparams as base`` (or
``config``) layers one file on another. The package's name is private and
fresh per read, and its modules leave ``sys.modules`` afterwards, so an
edited file is read again rather than taken from a cache.

A file that defines ``hparams`` (a dict) and no ``config`` is an
experiment's hyperparameters: ``experiments/00_name/hparams.py``. Its config
is ``train_config(hparams)`` when the folder's ``__main__.py`` defines that
function (it returns the config: the same plain tree a YAML experiment
holds, whose ``class`` paths and file references expresso checks, records
and can resume), else the hparams dict itself. The run's default name is
``<folder>-<file stem>`` (``00_name-hparams``). ``infer_config(hparams,
*args)`` in ``__main__.py`` receives the extra arguments of ``expresso
predict RUN ...`` (commands/predict.py). ``__main__.py`` is imported, not
run as ``__main__``, so a ``if __name__ == "__main__":`` block in it stays
the user's own entry point.
"""

from __future__ import annotations

import contextlib
import importlib.machinery
import importlib.util
import itertools
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from .errors import Problem, describe

HPARAMS = "hparams"
MAIN = "__main__.py"
TRAIN_CONFIG = "train_config"
INFER_CONFIG = "infer_config"

_packages = itertools.count()


class PythonFileError(Exception):
    """A Python config or experiment file that cannot be run or read; carries the problems."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__("; ".join(map(str, problems)))


@dataclass(frozen=True)
class Experiment:
    """An hparams file read: its folder, the file, and its hyperparameters (plain data, for run.json)."""

    folder: Path
    file: Path
    hparams: dict

    @property
    def name(self) -> str:
        return f"{self.folder.name}-{self.file.stem}"

    def record(self) -> dict:
        """What run.json keeps: where the experiment lives (for predict's infer_config) and its hyperparameters."""
        return {"folder": str(self.folder), "file": self.file.name, "hparams": self.hparams}


# The experiments the loader read last, by resolved file path: the loader names the run after them, train records them.
_read: dict[Path, Experiment] = {}


def experiment_of(path: Path) -> Experiment | None:
    """The experiment ``path`` was read as, if its last read found an hparams file there."""
    return _read.get(path.resolve())


@contextlib.contextmanager
def folder_package(folder: Path) -> Iterator[str]:
    """A fresh package for ``folder``, its name yielded, so its files import one another; gone from sys.modules after.

    User code called inside (``train_config``) may import its neighbours
    lazily too; nothing stays cached, so an edited file is read again.
    """
    package = f"_expresso_folder_{next(_packages)}"
    spec = importlib.machinery.ModuleSpec(package, None, is_package=True)
    spec.submodule_search_locations = [str(folder.resolve())]
    sys.modules[package] = importlib.util.module_from_spec(spec)
    try:
        yield package
    finally:
        for module in [m for m in sys.modules if m == package or m.startswith(f"{package}.")]:
            del sys.modules[module]


def display_beside(shown: str, file: str) -> str:
    """How to name ``file`` in the folder of the file shown as ``shown``."""
    parent = Path(shown).parent
    return file if str(parent) == "." else f"{parent}/{file}"


def _import(path: Path, package: str, shown: str) -> ModuleType:
    # a stem such as "my.config" would make the module a child of "my", which its relative imports would look for
    name = f"{package}.{path.stem if path.stem.isidentifier() else '_config_file'}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise PythonFileError([Problem(shown, "", "cannot be imported as a Python module")])
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    writes, sys.dont_write_bytecode = sys.dont_write_bytecode, True  # no __pycache__ in the user's config folders
    try:
        spec.loader.exec_module(module)
    except SyntaxError as exc:
        raise PythonFileError([Problem(shown, "", f"invalid Python at line {exc.lineno}: {exc.msg}")]) from None
    except ModuleNotFoundError as exc:
        missing_module = exc.name or ""
        if not missing_module.startswith(f"{package}."):
            raise PythonFileError([Problem(shown, "", f"running the file raised ModuleNotFoundError: {exc}")]) from None
        # a relative import of a file the folder lacks: name the file, not the private package
        missing = missing_module[len(package) + 1 :].replace(".", "/")
        raise PythonFileError(
            [Problem(shown, "", f"a relative import found no {missing}.py beside it in {path.parent}")]
        ) from None
    except Exception as exc:  # the user's code failed: report it, do not crash
        raise PythonFileError([Problem(shown, "", f"running the file raised {type(exc).__name__}: {exc}")]) from None
    finally:
        sys.dont_write_bytecode = writes
    return module


def read_python_config(path: Path, shown: str) -> tuple[Any, Experiment | None]:
    """A ``.py`` file's config (its dict ``config``, or what the experiment makes of ``hparams``) and its experiment, if any."""
    with folder_package(path.parent) as package:
        return _read_in(path, shown, package)


def _read_in(path: Path, shown: str, package: str) -> tuple[Any, Experiment | None]:
    """``read_python_config`` inside the folder's package: the hparams file, then (an experiment's) __main__.py."""
    main = path.parent / MAIN
    has_main = path.name != MAIN and main.is_file()
    namespace = vars(_import(path, package, shown))
    if "config" in namespace or HPARAMS not in namespace:
        if "config" not in namespace:
            raise PythonFileError(
                [
                    Problem(
                        shown,
                        "",
                        "a Python config must define a dict named `config` (or, in an experiment folder, `hparams`);"
                        " neither is defined",
                    )
                ]
            )
        return namespace["config"], None
    hparams = namespace[HPARAMS]
    if not isinstance(hparams, dict):
        raise PythonFileError([Problem(shown, HPARAMS, f"received {describe(hparams)}, expected a dict")])
    config: Any = hparams
    if has_main:
        module = _import(main, package, display_beside(shown, MAIN))
        train_config = getattr(module, TRAIN_CONFIG, None)
        if train_config is not None:
            config = _call(train_config, (dict(hparams),), display_beside(shown, MAIN), f"{TRAIN_CONFIG}(hparams)")
    if not isinstance(config, dict):
        raise PythonFileError(
            [
                Problem(
                    display_beside(shown, MAIN),
                    TRAIN_CONFIG,
                    f"returned {describe(config)}, expected a dict (a config: the tree a YAML experiment holds)",
                )
            ]
        )
    return config, Experiment(path.parent.resolve(), path.resolve(), hparams)


def remember(path: Path, experiment: Experiment | None) -> None:
    """Keep (or forget) what ``path`` was read as, once files.py has checked its hparams are plain data."""
    if experiment is None:
        _read.pop(path.resolve(), None)
    else:
        _read[path.resolve()] = experiment


def _call(function: Any, args: tuple, shown: str, what: str) -> Any:
    try:
        return function(*args)
    except Exception as exc:  # the user's code failed: name it and what it raised
        raise PythonFileError([Problem(shown, "", f"{what} raised {type(exc).__name__}: {exc}")]) from None


def infer_config(experiment: dict, args: list[str]) -> dict | None:
    """``infer_config(hparams, *args)`` of a recorded experiment's ``__main__.py``; None when it defines none.

    ``experiment`` is run.json's ``experiment`` record. Returns what the
    function returned, which must be a dict (commands/predict.py reads its keys).
    """
    folder = Path(experiment["folder"])
    main = folder / MAIN
    if not main.is_file():
        return None
    with folder_package(folder) as package:
        function = getattr(_import(main, package, str(main)), INFER_CONFIG, None)
        if function is None:
            return None
        result = _call(function, (dict(experiment["hparams"]), *args), str(main), f"{INFER_CONFIG}(hparams, *args)")
    if not isinstance(result, dict):
        raise PythonFileError([Problem(str(main), INFER_CONFIG, f"returned {describe(result)}, expected a dict")])
    return result
