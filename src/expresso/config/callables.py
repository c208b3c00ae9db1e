"""Turn a ``class`` path into the callable it names, or say exactly why not.

Two spellings, one meaning:

- ``package.module.Name`` (also ``package.module.Outer.Inner``): imported
  from installed packages or from the user's project folder (project.py says
  which folder that is), which is put on ``sys.path``;
- ``path/to/file.py:Name``: a file relative to the project folder (or an
  absolute path); inside the project it is imported as the module its path
  names (``my_project/models.py`` -> ``my_project.models``), so the class is
  the same object however it is reached.

A misspelling gets a suggestion built from what does exist
(``torch.optim.AdamX`` -> ``torch.optim.AdamW``; ``torch.optm.AdamW`` ->
``torch.optim.AdamW``).
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import pkgutil
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

from .errors import suggest
from .files import is_file


class CallableNotFound(Exception):
    """The path cannot be imported; ``hint`` is a corrected full path, if one was found."""

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.hint = hint


# The project last put on sys.path, and how its root was found (project.py): import errors name it.
_project: tuple[str, str | None] | None = None


def add_project_to_path(project_root: Path, how: str | None = None) -> None:
    """Make the user's project importable (``my_project.models.MyNet``); ``how``: how its root was found."""
    global _project
    root = str(project_root.resolve())
    if root not in sys.path:
        sys.path.insert(0, root)
    _project = (root, how)


def _project_note(then: str = "") -> str:
    """ " (project root: /x, the folder holding pyproject.toml<then>)", or "" when no project is on sys.path."""
    if _project is None or _project[0] not in sys.path:  # sys.path was restored since: the note would be false
        return ""
    root, how = _project
    return f" (project root: {root}{f', {how}' if how else ''}{then})"


def locate(path: str) -> Callable[..., Any]:
    """The object named by ``path``; raises CallableNotFound with a suggestion."""
    if ":" in path:
        return _locate_in_file(path)
    parts = path.split(".")
    if not all(part.isidentifier() for part in parts):
        raise CallableNotFound(f"{path!r} is not a dotted path such as torch.optim.AdamW or my_project/models.py:MyNet")
    module, depth = _import_longest_prefix(parts, path)
    obj: Any = module
    for i in range(depth, len(parts)):
        if not hasattr(obj, parts[i]):
            raise _missing_attribute(obj, parts, i, path)
        obj = getattr(obj, parts[i])
    if not callable(obj):
        raise CallableNotFound(f"{path!r} names a {type(obj).__name__}, which is not callable")
    return obj


def instances_callable(cls: type) -> bool:
    """Whether a class's instances can be called: a ``__call__`` of its own or inherited.

    ``hasattr(cls, "__call__")`` is always true (``type.__call__`` builds the
    instances), so the class's own MRO is searched instead.
    """
    return any("__call__" in vars(klass) for klass in inspect.getmro(cls) if klass is not object)


def _import_longest_prefix(parts: list[str], path: str):
    """Import the longest importable module prefix of ``parts``; return it and its length."""
    for depth in range(len(parts), 0, -1):
        name = ".".join(parts[:depth])
        try:
            return importlib.import_module(name), depth
        except ModuleNotFoundError as exc:
            # Only "this very module does not exist" means: try a shorter prefix.
            if exc.name != name and not name.startswith(f"{exc.name}."):
                raise CallableNotFound(f"importing {name!r} failed: {exc}") from None
        except Exception as exc:  # the module exists but is broken: say so, do not guess
            raise CallableNotFound(f"importing {name!r} raised {type(exc).__name__}: {exc}") from None
    rest = "".join(f".{p}" for p in parts[1:]).replace("{", "{{")
    note = _project_note("; modules are imported from there")
    raise CallableNotFound(f"no module named {parts[0]!r}{note}", suggest(parts[0], _top_level_modules(), "{}" + rest))


def _missing_attribute(obj: Any, parts: list[str], i: int, path: str) -> CallableNotFound:
    owner = ".".join(parts[:i])
    names = set(dir(obj))
    submodule_path = getattr(obj, "__path__", None)
    if submodule_path is not None:  # a package: its unimported submodules count too
        names |= {m.name for m in pkgutil.iter_modules(submodule_path)}
    public = [n for n in names if not n.startswith("_")]
    template = ".".join([*parts[:i], "{}", *parts[i + 1 :]])
    return CallableNotFound(f"{owner!r} has no attribute {parts[i]!r}", suggest(parts[i], public, template))


def _top_level_modules() -> list[str]:
    return sorted({m.name for m in pkgutil.iter_modules()} | set(sys.builtin_module_names))


def _locate_in_file(path: str) -> Callable[..., Any]:
    file_text, _, attr = path.rpartition(":")
    found = _find_source(Path(file_text))
    if found is None:
        raise CallableNotFound(
            f"{path!r}: no Python file {file_text!r} in the working directory or the project folder{_project_note()}"
        )
    file, root = found
    module = _import_file(file, root)
    if not attr or not hasattr(module, attr.split(".")[0]):
        names = [n for n in dir(module) if not n.startswith("_")]
        raise CallableNotFound(f"{file_text!r} defines no {attr!r}", suggest(attr, names, file_text + ":{}"))
    obj: Any = module
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


def _find_source(file: Path) -> tuple[Path, Path] | None:
    """The file and the folder it was found under: the working directory, then sys.path."""
    if file.suffix != ".py":
        return None
    if file.is_absolute():
        return (file, file.parent) if is_file(file) else None
    for folder in [Path.cwd(), *(Path(p) for p in sys.path if p)]:
        if is_file(folder / file):
            return (folder / file).resolve(), folder.resolve()
    return None


def _import_file(file: Path, root: Path) -> ModuleType:
    """Import a file as the module its path names under ``root``, else under a private name."""
    relative = file.with_suffix("").relative_to(root)
    try:
        if all(part.isidentifier() for part in relative.parts) and str(root) in sys.path:
            return importlib.import_module(".".join(relative.parts))
        name = f"_expresso_user_{abs(hash(str(file)))}"
        if name in sys.modules:
            return sys.modules[name]
        spec = importlib.util.spec_from_file_location(name, file)
        # Only .py files reach here (_find_source), and those always get the source file loader.
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
        return module
    except Exception as exc:
        raise CallableNotFound(f"importing {str(file)!r} raised {type(exc).__name__}: {exc}") from None
