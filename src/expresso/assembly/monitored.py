"""The metric names a config will produce, and every monitor checked against them before anything runs.

A misspelt monitor (``val/accuracy`` for ``val/acc``) used to pass
``--check`` and fail after the first epoch, leaving a failed run folder. The
names are known from the config alone:

- for each pipeline and split (train, val, test), under ``<split>`` (one
  pipeline) or ``<split>/<pipeline>``: ``loss``, ``loss/<term>`` when the
  pipeline sums several loss terms (any ``loss/...`` with a ``step``, which
  returns its own), each of its metrics, and ``<metric>/<i>``, the items of a
  multi-valued metric (engine/metrics.py defines the keys);
- ``lr``, or ``lr/<optimizer>`` with several optimizers, for each optimizer
  with a scheduler;
- what a configured callback class declares it writes (``Callback.provides``).

A ``val/`` name is a valid name even when no split has validation data: it is
never measured, which the end-of-fit warning reports; it is not a typo.
The monitors checked: ``trainer.monitor``, the ``monitor`` of every
configured callback (its default when the config leaves it out), of every
stage's ``early_stopping``, and of a stage's ``until`` component.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from ..config import Problem
from ..config.callables import CallableNotFound, locate
from ..config.check import signature_of
from ..config.errors import format_key, suggest
from ..config.wiring import Wiring
from ..engine.metrics import lr_key, metric_names, metric_prefix
from ..engine.pipeline import Plan

SPLITS = ("train", "val", "test")
EARLY_STOPPING = "expresso.callbacks.EarlyStopping"  # what a stage's early_stopping builds (config/specs.py)
_ITEM = re.compile(r"(.+)/\d+")


class MetricNames:
    """The names a config's run will record; ``knows(name)`` also accepts a multi-valued metric's items."""

    def __init__(self, names: set[str], items_of: set[str], free_prefixes: tuple[str, ...] = ()):
        self.names, self.items_of, self.free_prefixes = names, items_of, free_prefixes

    def knows(self, name: str) -> bool:
        if name in self.names or name.startswith(self.free_prefixes):
            return True
        item = _ITEM.fullmatch(name)
        return item is not None and item.group(1) in self.items_of


def produced_names(tree: Mapping, w: Wiring, plans: Mapping[str, Plan]) -> MetricNames:
    """Every metric name the run of this config records (see the module docstring)."""
    names: set[str] = set()
    items_of: set[str] = set()
    free: list[str] = []
    for name, plan in plans.items():
        terms = [term.name for term in plan.terms] if plan.log_terms else []
        for split in SPLITS:
            prefix = metric_prefix(split, name, len(plans))
            names |= metric_names(prefix, terms, plan.pipeline.metrics or {})
            items_of |= {f"{prefix}/{metric}" for metric in plan.pipeline.metrics or {}}
            if tree.get("step"):
                free.append(f"{prefix}/loss/")
    names |= {lr_key(name, len(w.optimizers)) for name in w.schedulers}
    for _, node in _callbacks(tree):
        provides = getattr(_located(node), "provides", ())
        names |= (
            {p for p in provides if isinstance(p, str)}
            if isinstance(provides, (tuple, list, set, frozenset))
            else set()
        )
    return MetricNames(names, items_of, tuple(free))


def monitor_problems(
    tree: Mapping, where: Callable[[tuple], str], w: Wiring, plans: Mapping[str, Plan]
) -> list[Problem]:
    """One problem per monitor that names no metric of this config, with the closest name."""
    known = produced_names(tree, w, plans)
    problems = []
    for path, monitor, default in _monitors(tree, w):
        if not isinstance(monitor, str) or known.knows(monitor):
            continue
        received = f"{monitor!r} (the default of {default})" if default else repr(monitor)
        problems.append(
            Problem(
                where(path),
                format_key(path),
                f"received {received}, expected a metric this config records: {', '.join(sorted(known.names))}",
                suggest(monitor, sorted(known.names)),
            )
        )
    return problems


def _monitors(tree: Mapping, w: Wiring) -> Iterator[tuple[tuple, Any, str | None]]:
    """(key path, monitored name, the class whose default it is or None) for every monitor of the config."""
    trainer = tree.get("trainer") or {}
    yield ("trainer", "monitor"), trainer.get("monitor"), None
    for index, node in _callbacks(tree):
        if "monitor" in node:
            yield ("callbacks", index, "monitor"), node["monitor"], None
        elif (default := _default_monitor(_located(node))) is not None:
            yield ("callbacks", index, "monitor"), default, node["class"]
    for path, spec in w.stages:
        if spec.early_stopping is not None:
            # the spec holds the default when the config leaves the monitor out: the message says which it is
            given = "monitor" in tree["stages"][path[1]]["early_stopping"]
            yield path + ("early_stopping", "monitor"), spec.early_stopping.monitor, None if given else EARLY_STOPPING
        if spec.until is not None and "monitor" in spec.until:
            yield path + ("until", "monitor"), spec.until["monitor"], None


def _callbacks(tree: Mapping) -> Iterator[tuple[int, dict]]:
    for index, node in enumerate(tree.get("callbacks") or []):
        if isinstance(node, dict) and isinstance(node.get("class"), str):
            yield index, node


def _located(node: dict) -> Any:
    try:
        return locate(node["class"])
    except CallableNotFound:  # the signature check reports it
        return None


def _default_monitor(target: Any) -> str | None:
    sig = signature_of(target) if target is not None else None
    param = sig.parameters.get("monitor") if sig is not None else None
    return param.default if param is not None and isinstance(param.default, str) else None
