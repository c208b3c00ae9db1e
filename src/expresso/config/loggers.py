"""``loggers:`` entries: ``csv`` (metrics.csv) or a component whose class is an ``expresso.loggers.Logger``.

A component of another kind would be built and never called, so ``--check``
refuses it. The class is recognised by its bases' names, so the config layer
imports nothing of the engine.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable

from .callables import CallableNotFound, locate
from .errors import Problem, format_key
from .schema import CLASS_KEY

LOGGER_BASE = ("expresso.loggers.base", "Logger")


def logger_problems(tree: dict, where: Callable[[tuple], str]) -> list[Problem]:
    problems: list[Problem] = []
    loggers = tree.get("loggers")
    if not isinstance(loggers, list):
        return problems  # not a list: the section's own check says so
    for index, node in enumerate(loggers):
        if not isinstance(node, dict) or not isinstance(node.get(CLASS_KEY), str):
            continue
        try:
            target = locate(node[CLASS_KEY])
        except CallableNotFound:
            continue  # reported by the signature check
        if not inspect.isclass(target) or not any(
            (base.__module__, base.__qualname__) == LOGGER_BASE for base in inspect.getmro(target)
        ):
            path = ("loggers", index, CLASS_KEY)
            problems.append(
                Problem(
                    where(path),
                    format_key(path),
                    f"{node[CLASS_KEY]} is not an expresso.loggers.Logger: a logger receives the hyperparameters, every epoch's metrics "
                    "and how the run ended (subclass expresso.loggers.Logger), or write 'csv'",
                )
            )
    return problems
