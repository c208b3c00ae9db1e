"""``loggers:`` entries: a short name (``csv``, ``tensorboard``, ``mlflow``, ``clearml``, ``sacred``, ``comet``, ``wandb``) or a component whose class is an ``expresso.loggers.Logger``.

A short name stands for its class with default options (``KNOWN_LOGGERS``);
the full spec (``{class: expresso.loggers.MLflowLogger, tracking_uri: ...}``)
sets options. A component of another kind would be built and never called,
so ``--check`` refuses it, and so it refuses a tracker whose library is not
installed (one line naming the ``pip install`` command) rather than failing
after the run folder exists. The class is recognised by its bases' names and
a library by ``find_spec``, so the config layer imports neither the engine
nor the trackers.

A class is listed once, among callbacks and loggers alike (state_keys.py
says why and checks it).
"""

from __future__ import annotations

import importlib.util
import inspect
from collections.abc import Callable
from dataclasses import dataclass

from .callables import CallableNotFound, locate
from .errors import Problem, format_key
from .schema import CLASS_KEY

LOGGER_BASE = ("expresso.loggers.base", "Logger")


@dataclass(frozen=True)
class KnownLogger:
    """A logger a config may name in one word: its class (None: ``csv``, the History callback) and its extra."""

    cls: str | None
    requires: str | None = None  # the module its extra installs
    extra: str | None = None  # torch-expresso[<extra>]


KNOWN_LOGGERS = {
    "csv": KnownLogger(None),
    "tensorboard": KnownLogger("expresso.loggers.tensorboard.TensorBoardLogger", "tensorboard", "tensorboard"),
    "mlflow": KnownLogger("expresso.loggers.mlflow.MLflowLogger", "mlflow", "mlflow"),
    "clearml": KnownLogger("expresso.loggers.clearml.ClearMLLogger", "clearml", "clearml"),
    "sacred": KnownLogger("expresso.loggers.sacred.SacredLogger", "sacred", "sacred"),
    "comet": KnownLogger("expresso.loggers.comet.CometLogger", "comet_ml", "comet"),
    "wandb": KnownLogger("expresso.loggers.wandb.WandbLogger", "wandb", "wandb"),
}
BUILTIN_LOGGERS = tuple(KNOWN_LOGGERS)


def install_hint(extra: str) -> str:
    """The command that installs an extra, as every missing-library message spells it."""
    return f"pip install torch-expresso[{extra}]"


def missing_extra(module: str, extra: str, what: str) -> str | None:
    """The one-line message for ``what`` when ``module`` is not importable (None: it is)."""
    try:
        found = importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a parent package that is not importable, a module set to None
        found = False
    return None if found else f"{what} needs the {module} package, which is not installed: {install_hint(extra)}"


def logger_component(entry: str | dict) -> dict | None:
    """A ``loggers:`` entry as the component to build: a short name's class, a spec as given; None for ``csv``."""
    if isinstance(entry, str):
        cls = KNOWN_LOGGERS[entry].cls
        return None if cls is None else {CLASS_KEY: cls}
    return entry


def logger_problems(tree: dict, where: Callable[[tuple], str]) -> list[Problem]:
    problems: list[Problem] = []
    loggers = tree.get("loggers")
    if not isinstance(loggers, list):
        return problems  # not a list: the section's own check says so
    by_class = {known.cls: (name, known) for name, known in KNOWN_LOGGERS.items() if known.cls}
    for index, node in enumerate(loggers):
        if isinstance(node, str):
            known = KNOWN_LOGGERS.get(node)
            if known is not None and known.requires and known.extra:  # unknown names: reported by validation
                message = missing_extra(known.requires, known.extra, f"the {node} logger")
                if message:
                    problems.append(Problem(where(("loggers", index)), format_key(("loggers", index)), message))
            continue
        if not isinstance(node, dict) or not isinstance(node.get(CLASS_KEY), str):
            continue
        path = ("loggers", index, CLASS_KEY)
        try:
            target = locate(node[CLASS_KEY])
        except CallableNotFound:
            continue  # reported by the signature check
        spelled = f"{getattr(target, '__module__', '')}.{getattr(target, '__qualname__', '')}"
        if spelled in by_class:  # expresso.loggers.MLflowLogger too, not only the path the table spells
            name, known = by_class[spelled]
            message = missing_extra(known.requires or "", known.extra or "", f"the {name} logger")
            if message:
                problems.append(Problem(where(path), format_key(path), message))
                continue
        if not inspect.isclass(target) or not any(
            (base.__module__, base.__qualname__) == LOGGER_BASE for base in inspect.getmro(target)
        ):
            problems.append(
                Problem(
                    where(path),
                    format_key(path),
                    f"{node[CLASS_KEY]} is not an expresso.loggers.Logger: a logger receives the hyperparameters, every epoch's metrics "
                    "and how the run ended (subclass expresso.loggers.Logger), or write one of "
                    f"{', '.join(BUILTIN_LOGGERS)}",
                )
            )
    return problems
