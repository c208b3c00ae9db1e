"""One checkpoint entry per callback: ``callbacks:`` and ``loggers:`` entries that would share one are refused at ``--check``.

Callbacks and loggers (a logger is a callback) keep their state in the
checkpoints under their ``state_key``, by default their class's name, so two
entries of one class would write one entry and the trainer could not start
(it refuses, with a traceback, after the run folder exists). ``--check``
refuses the second entry first, naming both; a class that overrides
``state_key`` tells its instances apart itself and is left to the trainer.
The class is found by its path, so the config layer imports neither the
engine nor the callbacks.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable

from .callables import CallableNotFound, locate
from .errors import Problem, format_key
from .loggers import KNOWN_LOGGERS
from .schema import CLASS_KEY

DEFAULT_STATE_KEY = ("expresso.engine.callback", "Callback")  # where state_key is the class's name
_NOUNS = {"callbacks": ("callback", "one of its kind"), "loggers": ("logger", "destination of one kind")}


def shared_state_key_problems(tree: dict, where: Callable[[tuple], str]) -> list[Problem]:
    """A problem for each ``callbacks``/``loggers`` entry whose checkpoint key an earlier entry of either list has."""
    problems: list[Problem] = []
    listed: dict[str, tuple[str, int]] = {}  # checkpoint key -> the entry that has it
    for section, (noun, kind) in _NOUNS.items():
        entries = tree.get(section)
        if not isinstance(entries, list):
            continue  # the section's own check says what is wrong with it
        for index, node in enumerate(entries):
            key = _default_state_key(_class_path(node))
            if key is None:
                continue
            first = listed.setdefault(key, (section, index))
            if first == (section, index):
                continue
            problems.append(
                Problem(
                    where((section, index)),
                    format_key((section, index)),
                    f"a second {key}, as {first[0]}.{first[1]}: a run's checkpoints keep each {noun}'s state under "
                    f"its class name, so a class is listed once (for a second {kind}, list a subclass of {key})",
                )
            )
    return problems


def _class_path(node: object) -> str | None:
    """The class an entry builds: a known logger's short name stands for its class (``csv`` for none)."""
    if isinstance(node, str):
        known = KNOWN_LOGGERS.get(node)
        return known.cls if known is not None else None
    if isinstance(node, dict) and isinstance(node.get(CLASS_KEY), str):
        return node[CLASS_KEY]
    return None


def _default_state_key(path: str | None) -> str | None:
    """The class's name when it keeps the default ``state_key``; None when it has its own, or is no class (reported elsewhere)."""
    if path is None:
        return None
    try:
        target = locate(path)
    except CallableNotFound:
        return None  # reported by the signature check
    if not inspect.isclass(target):
        return None
    definer = next((base for base in inspect.getmro(target) if "state_key" in vars(base)), None)
    if definer is not None and (definer.__module__, definer.__qualname__) != DEFAULT_STATE_KEY:
        return None
    return target.__qualname__
