"""Validate a composed config tree against the schema, collecting every problem.

Type rules are deliberately strict where YAML is loose: ``true`` is not an
integer and ``"10"`` is not a number; an integer is accepted where a float is
expected (and stays an integer in the record, so printing is idempotent).
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Callable
from functools import cache
from typing import Any, Literal, Union

from ..settings import moved_message
from .errors import Problem, describe, format_key, suggest
from .loggers import BUILTIN_LOGGERS
from .schema import (
    ARGS_KEY,
    CLASS_KEY,
    COLLECTIONS,
    COMPONENTS,
    PARTIAL_KEY,
    ROOT_KEYS,
    SECTION_KEYS,
    SETTINGS,
    STRUCTURES,
    SWEEPS,
    VALUES,
)

UNIONS = (Union, types.UnionType)  # Optional[int] and int | None alike
Where = Callable[[tuple], str]  # key path -> the file (or "command line") it came from


def settings_defaults(cls: type) -> dict:
    """The defaults of a settings dataclass as a plain dict, in field order."""
    return dataclasses.asdict(cls())


def validate(tree: dict, where: Where) -> list[Problem]:
    """Every problem of ``tree`` against the schema; fills nothing, changes nothing.

    The graph sections' shapes and cross references are config/wiring.py's
    ``general_form``, which runs on a tree without these problems.
    """
    problems: list[Problem] = []

    def report(path: tuple, message: str, hint: str | None = None) -> None:
        problems.append(Problem(where(path), format_key(path), message, hint))

    for key, value in tree.items():
        path: tuple = (key,)  # a key path; grows by names and list indices below
        if key not in ROOT_KEYS:
            report(path, "unknown top-level key", suggest(key, ROOT_KEYS))
        elif key in ("name", "init_from"):
            if not isinstance(value, str) or not value:
                if key == "name" or value is not None:
                    report(path, f"received {describe(value)}, expected a non-empty string")
        elif key in COMPONENTS:
            entries = list(enumerate(value)) if key == "scheduler" and isinstance(value, list) else [(None, value)]
            for index, entry in entries:
                if entry is not None:
                    at = path if index is None else path + (index,)
                    _component(entry, at, report)
                    _section_keys(key, entry, at, report)
        elif key in VALUES:
            if not isinstance(value, dict):
                report(path, f"received {describe(value)}, expected a mapping of values (e.g. num_classes: 10)")
        elif key in SETTINGS:
            _settings(SETTINGS[key], value, path, report)
        elif key in SWEEPS:  # the shape here; the contents are the sweep's (expresso.sweeps.spec checks them)
            if not isinstance(value, SWEEPS[key]) or key == "series" and not all(isinstance(e, dict) for e in value):
                expected = (
                    "a mapping (parameters, search, objective...)"
                    if key == "sweep"
                    else "a list of mappings of overrides (key: value)"
                )
                report(path, f"received {describe(value)}, expected {expected}")
        elif key in STRUCTURES:
            if not isinstance(value, STRUCTURES[key]):
                report(
                    path,
                    f"received {describe(value)}, expected {'a list' if STRUCTURES[key] is list else 'a mapping of name: entry'}",
                )
            else:
                _nested(value, path, report)
        else:
            _collection(key, value, path, report)
            if key == "optimizers" and isinstance(value, dict):
                for name, entry in value.items():
                    scheduler = entry.get("scheduler") if isinstance(entry, dict) else None
                    for index, item in enumerate(
                        scheduler if isinstance(scheduler, list) else [scheduler] if scheduler else []
                    ):
                        at = path + (name, "scheduler") + ((index,) if isinstance(scheduler, list) else ())
                        _component(item, at, report)
                        _section_keys("scheduler", item, at, report)
    return problems


def _component(value: Any, path: tuple, report) -> None:
    """A component is a mapping whose ``class`` names a callable."""
    if not isinstance(value, dict):
        report(path, f"received {describe(value)}, expected a mapping with a '{CLASS_KEY}' key (or a file reference)")
        return
    if CLASS_KEY not in value:
        report(
            path, f"missing '{CLASS_KEY}': a component names the callable that builds it, e.g. class: torch.optim.AdamW"
        )
        return
    _class_node(value, path, report)


def _section_keys(section: str, node: Any, path: tuple, report) -> None:
    for key, choices in SECTION_KEYS.get(section, {}).items():
        if isinstance(node, dict) and key in node and node[key] not in choices:
            report(path + (key,), f"received {describe(node[key])}, expected one of {', '.join(map(repr, choices))}")


def _class_node(node: dict, path: tuple, report) -> None:
    """Check the reserved keys of a mapping with ``class``, and its nested components."""
    target = node[CLASS_KEY]
    if not isinstance(target, str) or not target.strip():
        report(path + (CLASS_KEY,), f"received {describe(target)}, expected a dotted path such as torch.optim.AdamW")
    if ARGS_KEY in node and not isinstance(node[ARGS_KEY], list):
        report(path + (ARGS_KEY,), f"received {describe(node[ARGS_KEY])}, expected a list of positional arguments")
    if PARTIAL_KEY in node and not isinstance(node[PARTIAL_KEY], bool):
        report(path + (PARTIAL_KEY,), f"received {describe(node[PARTIAL_KEY])}, expected true or false")
    for key, child in node.items():
        _nested(child, path + (key,), report)


def _nested(value: Any, path: tuple, report) -> None:
    if isinstance(value, dict):
        if CLASS_KEY in value:
            _class_node(value, path, report)
        else:
            for key, child in value.items():
                _nested(child, path + (key,), report)
    elif isinstance(value, list):
        for i, child in enumerate(value):
            _nested(child, path + (i,), report)


def _collection(key: str, value: Any, path: tuple, report) -> None:
    kind = COLLECTIONS[key]
    if not isinstance(value, kind):
        expected = "a mapping of name: component" if kind is dict else "a list"
        report(path, f"received {describe(value)}, expected {expected}")
        return
    entries = value.items() if kind is dict else enumerate(value)
    for name, entry in entries:
        if key == "loggers" and isinstance(entry, str):
            if entry not in BUILTIN_LOGGERS:
                report(
                    path + (name,),
                    f"unknown logger {entry!r}; expected one of {', '.join(BUILTIN_LOGGERS)} or a component",
                    suggest(entry, BUILTIN_LOGGERS),
                )
        else:
            _component(entry, path + (name,), report)


def _settings(cls: type, value: Any, path: tuple, report) -> None:
    if not isinstance(value, dict):
        report(path, f"received {describe(value)}, expected a mapping of {path[0]} settings")
        return
    check_fields(cls, value, path, report, f"unknown {path[0]} setting")


def check_fields(
    cls: type,
    value: dict,
    path: tuple,
    report,
    unknown: str,
    skip: Callable[[dataclasses.Field], bool] = lambda f: False,
) -> None:
    """Each key of ``value`` against the dataclass ``cls`` (settings, graph specs): an unknown key is reported with
    ``unknown`` and the closest field (a setting that moved, with where it went); each known one's value is checked
    against the field's annotation and rules, unless ``skip(field)`` (a value the caller checks itself)."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = _hints(cls)
    for key, item in value.items():
        if key not in fields:
            moved = moved_message(cls, key)
            if moved is None:
                report(path + (key,), unknown, suggest(str(key), fields))
            elif item is not None:  # null sets nothing: what run folders written before the move hold
                report(path + (key,), f"received {describe(item)}, but {moved}")
            continue
        if skip(fields[key]):
            continue
        message = check_type(item, hints[key], fields[key].metadata)
        if message:
            report(path + (key,), message)


@cache
def _hints(cls: type) -> dict:
    return typing.get_type_hints(cls)


def check_type(value: Any, annotation: Any, rules: typing.Mapping = {}) -> str | None:  # noqa: B006 - read only
    """``None`` if ``value`` fits ``annotation`` and the field's rules, else the message.

    A rule ``expected`` (graph specs) words what is expected, for a value of the wrong type or out of range alike.
    """
    if rules.get("reserved") and value is not None:
        return f"received {describe(value)}, expected null: {rules['reserved']}"
    if not fits(value, annotation):
        return f"received {describe(value)}, expected {rules.get('expected') or expected(annotation)}"
    for number in _numbers(value):
        if rules.get("min") is not None and number < rules["min"]:
            if rules.get("expected"):
                return f"received {describe(value)}, expected {rules['expected']}"
            return f"received {value!r}, expected a value >= {rules['min']}"
        if rules.get("max") is not None and number > rules["max"]:
            return f"received {value!r}, expected a value <= {rules['max']}"
    if rules.get("check") and value is not None:  # the type fits: a check sees only values of its field's type
        message = rules["check"](value)
        if message:
            return f"received {value!r}, {message}"
    return None


def _numbers(value: Any) -> list:
    if isinstance(value, bool):
        return []
    if isinstance(value, (int, float)):
        return [value]
    if isinstance(value, list):
        return [v for v in value if isinstance(v, (int, float)) and not isinstance(v, bool)]
    return []


def fits(value: Any, annotation: Any) -> bool:
    """Whether ``value`` is of the type ``annotation`` describes (YAML's looseness refused: true is no integer)."""
    origin = typing.get_origin(annotation)
    if annotation is Any:
        return True
    if annotation is type(None):
        return value is None
    if origin in UNIONS:
        return any(fits(value, arg) for arg in typing.get_args(annotation))
    if origin is Literal:
        return any(value == choice and type(value) is type(choice) for choice in typing.get_args(annotation))
    if origin is list:
        (item,) = typing.get_args(annotation) or (Any,)
        return isinstance(value, list) and all(fits(v, item) for v in value)
    if origin is dict:
        return isinstance(value, dict)
    if annotation is bool:
        return isinstance(value, bool)
    if annotation is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if annotation is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if isinstance(annotation, type):
        return isinstance(value, annotation)
    return True  # an annotation we do not understand is not our business to enforce


def expected(annotation: Any) -> str:
    """Describe an annotation for a person: ``Optional[int]`` -> ``an integer or null``."""
    origin = typing.get_origin(annotation)
    if origin in UNIONS:
        return " or ".join(expected(arg) for arg in typing.get_args(annotation))
    if origin is Literal:
        return "one of " + ", ".join(repr(c) for c in typing.get_args(annotation))
    if origin is list:
        args = typing.get_args(annotation)
        return f"a list of {_plural(args[0])}" if args else "a list"
    if origin is dict:
        return "a mapping"
    names = {bool: "true or false", int: "an integer", float: "a number", str: "a string", type(None): "null"}
    if annotation in names:
        return names[annotation]
    return getattr(annotation, "__name__", str(annotation))


def _plural(annotation: Any) -> str:
    return {int: "integers", float: "numbers", str: "strings", bool: "booleans"}.get(annotation, expected(annotation))
