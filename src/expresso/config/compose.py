"""Compose one config tree from files that reference and extend each other.

Rules, in the order they apply to each file:

1. ``extends: base.yaml`` (or a list) at a file's root: the bases are
   composed first, in order, and this file is merged on top. Mappings merge
   key by key; lists and scalars are replaced; later wins.
2. A file reference (a string ending in .yaml, .yml, .json or .py at a
   component key, see ``schema.is_reference_slot``) is replaced by that
   file's tree. A reference names a whole component, so it *replaces* what a
   base had there rather than merging into it; likewise a mapping whose
   ``class`` differs from the base's replaces it (an SGD does not inherit
   AdamW's ``betas``).
3. References resolve against the referencing file's folder, then the
   project's ``configs/`` root (project.py says which folder that is). A
   missing file and a cycle are errors.

While composing we record which file every key path came from (``origins``),
so that a problem found later, in validation or in a signature check, names
the file the user has to edit.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from .errors import Problem, close_matches, format_key
from .files import EXTENSIONS, FileProblem, config_files_in, is_dir, is_file, read_file
from .schema import CLASS_KEY, is_reference_slot

EXTENDS_KEY = "extends"


class _Component(dict):
    """A subtree read from a referenced file: replaces, never merges into, a base."""


def is_reference(value: Any) -> bool:
    return isinstance(value, str) and value.lower().endswith(EXTENSIONS)


def display(path: Path) -> str:
    """How a file is named in messages: relative to the working directory when possible."""
    try:
        return os.path.relpath(path)
    except ValueError:  # another drive on Windows
        return str(path)


class Composer:
    """Reads files into one tree; collects problems instead of stopping at the first."""

    def __init__(self, configs_root: Path | None):
        self.configs_root = configs_root
        self.origins: dict[tuple, str] = {}
        self.problems: list[Problem] = []

    def where(self, path: tuple) -> str:
        """The file (or "command line") that set ``path`` or its nearest parent."""
        for end in range(len(path), -1, -1):
            origin = self.origins.get(tuple(path[:end]))
            if origin is not None:
                return origin
        return "<config>"

    # -- loading -----------------------------------------------------------
    def compose_file(self, path: Path) -> dict:
        tree = self.load(path, (), ())
        return strip_markers(tree) if isinstance(tree, dict) else {}

    def compose_tree(self, tree: dict, shown: str, folder: Path) -> dict:
        """Compose a tree given in Python (``load_config({...})``)."""
        return strip_markers(self._compose(dict(tree), (), shown, folder, ()))

    def load(self, path: Path, at: tuple, stack: tuple) -> Any:
        path = path.resolve()
        shown = display(path)
        if path in stack:
            cycle = " -> ".join(display(p) for p in (*stack[stack.index(path) :], path))
            self.problems.append(Problem(display(stack[-1]), format_key(at), f"reference cycle: {cycle}"))
            return None
        try:
            data = read_file(path, shown)
        except FileProblem as exc:
            self.problems.extend(exc.problems)
            return None
        if data is None or (at == () and not isinstance(data, dict)):
            kind = "empty" if data is None else f"a {type(data).__name__}"
            expected = "a mapping of config keys" if at == () else "the component's tree"
            self.problems.append(Problem(shown, format_key(at), f"the file is {kind}; expected {expected}"))
            return None
        return self._compose(data, at, shown, path.parent, stack + (path,))

    def _compose(self, data: Any, at: tuple, shown: str, folder: Path, stack: tuple) -> Any:
        bases = []
        if isinstance(data, dict) and EXTENDS_KEY in data:
            for ref in self._extends_list(data.pop(EXTENDS_KEY), at, shown):
                found = self.find(ref, folder, shown, at + (EXTENDS_KEY,))
                if found is not None:
                    bases.append(self.load(found, at, stack))
        self._record(data, at, shown)
        data = self._resolve_references(data, at, shown, folder, stack)
        merged = None
        for base in bases + [data]:
            merged = base if merged is None else merge(merged, base)
        return merged

    def _extends_list(self, value: Any, at: tuple, shown: str) -> list[str]:
        refs = [value] if isinstance(value, str) else value
        if not isinstance(refs, list) or not all(isinstance(r, str) and is_reference(r) for r in refs):
            self.problems.append(
                Problem(
                    shown,
                    format_key(at + (EXTENDS_KEY,)),
                    f"received {value!r}, expected a config file path or a list of them",
                )
            )
            return []
        return refs

    def _record(self, value: Any, path: tuple, shown: str) -> None:
        self.origins[path] = shown
        if isinstance(value, dict):
            for key, child in value.items():
                self._record(child, path + (key,), shown)
        elif isinstance(value, list):
            for i, child in enumerate(value):
                self._record(child, path + (i,), shown)

    def _resolve_references(self, data: Any, at: tuple, shown: str, folder: Path, stack: tuple) -> Any:
        if is_reference_slot(at) and is_reference(data):
            return self.load_reference(data, at, folder, shown, stack)
        if len(at) < 2 and isinstance(data, (dict, list)):
            items = data.items() if isinstance(data, dict) else enumerate(data)
            for key, child in list(items):
                data[key] = self._resolve_references(child, at + (key,), shown, folder, stack)
        return data

    def load_reference(self, ref: str, at: tuple, folder: Path, shown: str, stack: tuple = ()) -> Any:
        found = self.find(ref, folder, shown, at)
        if found is None:
            return None
        tree = self.load(found, at, stack)
        return _Component(tree) if isinstance(tree, dict) else tree

    def find(self, ref: str, folder: Path, shown: str, at: tuple) -> Path | None:
        """Resolve a reference against ``folder``, then the configs root."""
        candidates = [Path(ref)] if os.path.isabs(ref) else [folder / ref]
        if self.configs_root is not None and not os.path.isabs(ref):
            candidates.append(self.configs_root / ref)
        for candidate in candidates:
            if is_file(candidate):
                return candidate
        looked = " and ".join(display(c.parent) for c in dict.fromkeys(candidates))
        self.problems.append(
            Problem(
                shown,
                format_key(at),
                f"file reference {ref!r} not found (looked in {looked})",
                _similar_file(candidates),
            )
        )
        return None


def _similar_file(candidates: list[Path]) -> str | None:
    """A close file name in the folders looked in, compared without the shared extension."""
    for candidate in candidates:
        if is_dir(candidate.parent):
            files = {p.stem: p.name for p in config_files_in(candidate.parent)}
            stems = close_matches(candidate.stem, files)
            if stems:
                return " or ".join(f"'{display(candidate.parent / files[stem])}'" for stem in stems)
    return None


def merge(base: Any, over: Any) -> Any:
    """Deep-merge ``over`` onto ``base``: mappings merge, everything else is replaced."""
    if not isinstance(base, dict) or not isinstance(over, dict) or isinstance(over, _Component):
        return over
    if CLASS_KEY in base and CLASS_KEY in over and base[CLASS_KEY] != over[CLASS_KEY]:
        return over
    merged = type(base)(base)
    for key, value in over.items():
        merged[key] = merge(base[key], value) if key in base else value
    return merged


def strip_markers(value: Any) -> Any:
    """Plain dicts all the way down (PyYAML's safe dumper refuses dict subclasses)."""
    if isinstance(value, dict):
        return {key: strip_markers(child) for key, child in value.items()}
    if isinstance(value, list):
        return [strip_markers(child) for child in value]
    return value
