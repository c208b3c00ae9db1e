"""An entry of the graph sections checked against its spec (config/specs.py), and names checked against what exists.

config/wiring.py walks the sections; this says, for one entry, whether it
is a mapping of known keys with values of their field's type (the settings'
validator, validation.py), whether the names it uses exist, and what to
report where not.
"""

from __future__ import annotations

import dataclasses
import typing
from typing import Any

from .errors import describe, suggest
from .specs import nested
from .validation import check_fields, fits


def check_entry(cls: Any, node: Any, path: tuple, report) -> bool:
    """An entry against its spec: a mapping, known keys, values of their field's type, required keys, nested specs.

    Fields that name other entries are left to ``_references``; False when the entry is no mapping at all.
    """
    if not isinstance(node, dict):
        report(path, f"received {describe(node)}, expected a mapping ({_a(cls.kind)})")
        return False
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    takes = f"unknown key of {_a(cls.kind)} (it takes: {', '.join(fields)})"
    check_fields(
        cls,
        node,
        path,
        report,
        takes,
        skip=lambda f: bool(f.metadata.get("names")) or nested(hints[f.name])[0] is not None,
    )
    for f in fields.values():
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING and f.name not in node:
            report(path, f"missing '{f.name}': {f.metadata['doc']}")
    for key, value in node.items():
        inner, many = nested(hints.get(key))
        if inner is None:
            continue
        if not many:
            check_entry(inner, value, path + (key,), report)
        elif value is not None and not isinstance(value, list):
            report(path + (key,), f"received {describe(value)}, expected {fields[key].metadata['expected']}")
        else:
            for i, item in enumerate(value or []):
                check_entry(inner, item, path + (key, i), report)
    return True


def check_references(cls: type, node: dict, path: tuple, known: dict, report) -> None:
    """Each field (nested specs' too) that names entries of another section, against the names that exist.

    Null where leaving the key out means a default (every metric, nothing frozen) is not that default.
    """
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        value, at, annotation = node.get(f.name), path + (f.name,), hints[f.name]
        inner, many = nested(annotation)
        if inner is not None and value is not None:
            items = list(enumerate(value)) if many and isinstance(value, list) else [] if many else [(None, value)]
            for i, item in items:
                if isinstance(item, dict):
                    check_references(inner, item, at if i is None else at + (i,), known, report)
        names = f.metadata.get("names")
        if not names or f.name not in node:
            continue
        if value is None:
            if not fits(None, annotation):
                report(at, f"received None, expected a list of names (leave '{f.name}' out for the default)")
        elif not (isinstance(value, dict) and fits(value, annotation)):  # a mapping where one may be: a component
            single = not fits([], annotation)
            check_names(value, at, known[names[0]], names[1], report, single=single)


def _a(what: str) -> str:
    return ("an " if what[0] in "aeiou" else "a ") + what


def check_tensor_names(value: Any, path: tuple, report, length: int | None = None) -> None:
    """A list of tensor names (of ``length`` names, when given)."""
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value) or (length and len(value) != length):
        expected = f"a list of {length} tensor names" if length else "a list of tensor names"
        report(path, f"received {describe(value)}, expected {expected}")


def check_names(value: Any, path: tuple, known, what: str, report, single: bool = False) -> None:
    """``value`` (a name, or a list of names) must all be among ``known``."""
    if value is None:
        return
    items = [value] if single else value
    if not isinstance(items, list) or not all(isinstance(v, str) for v in items):
        report(
            path,
            f"received {describe(value)}, expected {'a name' if single else 'a list of names'} among {sorted(known, key=str)}",
        )
        return
    for item in items:
        if item not in known:
            report(
                path, f"unknown {what} {item!r}; expected one of {sorted(known, key=str)}", suggest(item, list(known))
            )
