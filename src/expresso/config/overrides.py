"""Command-line overrides: ``key.sub=value``, ``+key=value``, ``~key``.

Values are typed as YAML (``optimizer.lr=3e-4`` is a float,
``optimizer.betas=[0.9,0.95]`` a list). ``key=value`` sets or replaces a
key that exists in the config, or one the schema knows (a root section such
as ``init_from`` or ``scheduler``, a ``trainer`` or ``dataloader``
setting). Any other key is an error with a close-match suggestion, because
a misspelt override that silently adds a key is a silently wasted run;
``+key=value`` adds a key on purpose (and is refused on a key that exists:
``key=value`` replaces it), ``+key=[...]`` on an existing list appends the
items, ``~key`` removes a key. A file reference at a component key
(``model=models/cnn.yaml``) reads that file, resolved against the working
directory, then the project's ``configs/``. List items are addressed by
index (``callbacks.0.patience=5``).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import yaml

from ..settings import moved_message
from .compose import Composer, is_reference, strip_markers
from .errors import Problem, format_key, suggest
from .files import MAX_DEPTH, encodable, index_key, parse_yaml, plain_data
from .schema import ROOT_KEYS, SETTINGS, is_reference_slot

WHERE = "command line"


def apply_overrides(tree: dict, overrides: list[str], composer: Composer) -> None:
    """Apply each override to ``tree`` in place; problems go to ``composer.problems``."""
    for text in overrides:
        _apply(tree, text, composer)


def _apply(tree: dict, text: str, composer: Composer) -> None:
    def problem(key: str, message: str, hint: str | None = None) -> None:
        composer.problems.append(Problem(WHERE, key, message, hint))

    if text.startswith("~"):
        mode, assignment = "delete", text[1:]
        key_text, sep, expected = assignment.partition("=")
        raw = None
    else:
        mode, assignment = ("add", text[1:]) if text.startswith("+") else ("set", text)
        key_text, sep, raw = assignment.partition("=")
        if not sep:
            problem(key_text, f"override {text!r} has no '='; write key.sub=value, +key=value or ~key")
            return
    path = tuple(p if (index := index_key(p)) is None else index for p in key_text.split("."))
    if not key_text or any(p == "" for p in path):
        problem(key_text, f"override {text!r} names no valid key path")
        return
    if not encodable(key_text):  # an undecodable byte in argv arrives as half of a surrogate pair
        problem(key_text, "the key path holds half of a surrogate pair (a byte that is not UTF-8): not text")
        return
    if len(path) > MAX_DEPTH:
        problem(
            key_text if len(key_text) <= 60 else key_text[:57] + "...",
            f"the key path is {len(path)} levels deep; a config nests at most {MAX_DEPTH}",
        )
        return

    found = _walk(tree, path, mode, problem)
    if found is None:
        return
    parent, path = found
    last = path[-1]
    if mode == "delete":
        if sep and not _is_value(parent[last], expected):  # Hydra's ~key=value: delete it only if it holds value
            problem(
                format_key(path),
                f"~{key_text}={expected} deletes the key only while it holds {expected}; it holds "
                f"{parent[last]!r}: write ~{key_text} to delete it whatever it holds",
            )
            return
        del parent[last]
        return
    assert raw is not None  # only "~key" has no value, and it returned above
    try:
        value = parse_yaml(raw) if raw != "" else ""
    except yaml.YAMLError as exc:
        detail = str(getattr(exc, "problem", "") or exc).strip()
        shown = raw if len(raw) <= 60 else raw[:57] + "..."
        problem(key_text, f"cannot read the value {shown!r} as YAML: {detail}")
        return
    value, problems = plain_data(value, path, WHERE)
    if problems:
        composer.problems.extend(problems)
        return
    if mode == "add" and _holds(parent, last):
        if not (isinstance(parent[last], list) and isinstance(value, list)):
            problem(key_text, _exists(key_text, parent[last]))
            return
        start = len(parent[last])
        parent[last].extend(value)
        for index, item in enumerate(value, start):  # the appended items came from here, the list's own from its files
            composer.origins[path + (index,)] = WHERE
            _record_override(composer, path + (index,), item)
        return
    if is_reference_slot(path) and is_reference(value):
        value = strip_markers(composer.load_reference(value, path, Path.cwd(), WHERE))
        if value is None:
            return
    else:
        composer.origins[path] = WHERE
    if isinstance(parent, list) and last == len(parent):
        parent.append(value)
    else:
        parent[last] = value
    _record_override(composer, path, value)


def _holds(parent: Any, key: Any) -> bool:
    return key in parent if isinstance(parent, dict) else key < len(parent)


def _exists(key_text: str, current: Any) -> str:
    """Why ``+key=value`` on a key that exists is refused, and what to write instead."""
    if isinstance(current, list):
        return f"{key_text} is a list: write +{key_text}=[...] to append items, or {key_text}=... to replace it"
    entry = f", or +{key_text}.KEY=... to add a key to it" if isinstance(current, dict) else ""
    return f"{key_text} exists: write {key_text}=... to replace it{entry}"


def _schema_knows(path: list) -> bool:
    """A key the schema defines, which ``key=value`` may set although the config lacks it."""
    if len(path) == 1:
        return path[0] in ROOT_KEYS
    return len(path) == 2 and path[0] in SETTINGS and path[1] in _setting_keys(path[0])


def _setting_keys(section: str) -> list[str]:
    """The settings ``section``'s dataclass declares (its fields: a ClassVar such as ``moved`` is none)."""
    cls = SETTINGS[section]
    assert dataclasses.is_dataclass(cls)  # every settings section is a dataclass (expresso/settings.py)
    return [field.name for field in dataclasses.fields(cls)]


def _missing(path: list, depth: int, node: dict, mode: str) -> tuple[str, str | None]:
    """The message and suggestion for a key the config lacks; "+key=..." only where adding it would work."""
    part = path[depth]
    if depth == 0:  # the root is a closed schema: an added unknown key would only fail validation
        if part in ROOT_KEYS and mode == "set":  # a section the config lacks, set below its root
            return f"no such key in the config (write {part}=... to set the whole section)", None
        settable = {*map(str, node), *(ROOT_KEYS if len(path) == 1 else ())}  # only a present section has keys to set
        return "no such key in the config", suggest(str(part), sorted(settable))
    if depth == 1 and path[0] in SETTINGS and (moved := moved_message(SETTINGS[path[0]], str(part))):
        return moved, None
    if depth == 1 and path[0] in SETTINGS and part not in _setting_keys(path[0]):
        return f"unknown {path[0]} setting", suggest(str(part), _setting_keys(path[0]))
    plus = f" (write +{format_key(path)}=... to add it)" if mode == "set" and path[0] not in SETTINGS else ""
    return f"no such key in the config{plus}", suggest(str(part), [str(k) for k in node])


def _record_override(composer: Composer, path: tuple, value: Any) -> None:
    if not isinstance(value, (dict, list)):
        return
    children = value.items() if isinstance(value, dict) else enumerate(value)
    for key, child in children:
        child_path = path + (key,)
        composer.origins.setdefault(child_path, composer.where(path))
        _record_override(composer, child_path, child)


def _walk(tree: dict, path: tuple, mode: str, problem) -> tuple[Any, tuple] | None:
    """The container that holds the last key and the path as found; parents made for ``+``; None on error."""
    node: Any = tree
    keys = list(path)  # a digit string may replace an int key below
    for depth, part in enumerate(keys):
        here = format_key(keys[: depth + 1])
        last = depth == len(keys) - 1
        if isinstance(node, dict) and isinstance(part, int) and part not in node and str(part) in node:
            part = keys[depth] = str(part)  # a mapping key written as a string of digits ("0" in JSON)
        if isinstance(node, list):
            if not isinstance(part, int) or part > len(node) or (part == len(node) and not (last and mode == "add")):
                problem(here, f"no list item {part!r}; the list has {len(node)} item(s) (indices 0-{len(node) - 1})")
                return None
        elif isinstance(node, dict):
            if part not in node:
                if mode == "add":
                    if not last:
                        node[part] = {}
                elif not (last and mode == "set" and _schema_knows(keys)):
                    problem(here, *_missing(keys, depth, node, mode))
                    return None
        else:
            problem(
                format_key(keys[:depth]),
                f"cannot set {here!r}: {format_key(keys[:depth])} holds a {type(node).__name__}, not a mapping",
            )
            return None
        if last:
            return node, tuple(keys)
        node = node[part]
    return None


def _is_value(value: Any, expected: str) -> bool:
    """Whether ``value`` is what the text ``expected`` says, read as YAML (as an override's value is)."""
    try:
        return value == (parse_yaml(expected) if expected != "" else "")
    except yaml.YAMLError:
        return False
