"""What a sweep searches: its parameters, search kind, objective and budget, from a ``sweep:`` section and flags.

::

    sweep:
      search: grid                  # grid (default), random or optuna
      parameters:                   # override key -> one distribution
        optimizer.lr: {log-uniform: [1.0e-4, 1.0e-2]}
        model.hidden: {choice: [64, 128]}
        trainer.batch_size: {range: [32, 128, 32]}   # 32, 64, 96, 128 (stop included)
        model.dropout: {uniform: [0.0, 0.5]}
        trainer.seed: {int: [0, 3]}                  # 0, 1, 2, 3
      objective: {metric: val/acc, direction: maximize}   # default: trainer.monitor and trainer.mode
      trials: 20                    # random and optuna: how many trials (grid: every combination)
      seed: 0                       # random: the sampling seed
      sampler: {class: optuna.samplers.TPESampler, seed: 0}
      pruner: {class: optuna.pruners.MedianPruner, n_startup_trials: 2}
      jobs: 2                       # trials at once (--jobs)

The flags say the same: ``--grid key=v1,v2`` (a choice), ``--random
key=KIND:a,b`` (any kind), ``--search``, ``--trials``, ``--jobs``; a flag wins
over the section. Every problem is found here, before anything runs, and is
one line naming the file (or the command line) and the key.
"""

from __future__ import annotations

import functools
import math
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from ..config.errors import ConfigError, Problem, describe, suggest
from ..config.files import parse_yaml
from ..errors import BadInput


class SweepError(BadInput, ValueError):
    """A sweep that cannot run as asked (a missing extra, a worker without its study): exit 2, one line."""


KINDS = ("choice", "range", "uniform", "log-uniform", "int")
SEARCHES = ("grid", "random", "optuna")
DIRECTIONS = {"maximize": "maximize", "minimize": "minimize", "max": "maximize", "min": "minimize"}
SECTION_KEYS = ("search", "parameters", "objective", "trials", "seed", "sampler", "pruner", "jobs")
COMMAND_LINE = "command line"
Where = Callable[[tuple], str]


@dataclass(frozen=True)
class Parameter:
    """One swept override key and the values it may take."""

    key: str
    kind: str
    bounds: tuple  # choice: the values; range: (start, stop, step); uniform, log-uniform, int: (low, high)

    @property
    def discrete(self) -> bool:
        return self.kind in ("choice", "range", "int")

    def values(self) -> list:
        """Every value a grid tries (discrete kinds only)."""
        if self.kind == "choice":
            return list(self.bounds)
        if self.kind == "int":
            return list(range(self.bounds[0], self.bounds[1] + 1))
        start, stop, step = self.bounds
        count = int(math.floor((stop - start) / step + 1e-9)) + 1
        return [_tidy(start + index * step) for index in range(count)]

    def sample(self, rng: random.Random) -> Any:
        if self.kind == "uniform":
            return rng.uniform(*self.bounds)
        if self.kind == "log-uniform":
            low, high = self.bounds
            return math.exp(rng.uniform(math.log(low), math.log(high)))
        return rng.choice(self.values())

    def suggest(self, trial: Any) -> Any:
        """The value an Optuna trial suggests (``trial.suggest_*``), under the override key as its name."""
        if self.kind == "uniform":
            return trial.suggest_float(self.key, *self.bounds)
        if self.kind == "log-uniform":
            return trial.suggest_float(self.key, *self.bounds, log=True)
        if self.kind == "int":
            return trial.suggest_int(self.key, *self.bounds)
        return trial.suggest_categorical(self.key, self.values())

    def probe(self) -> Any:
        """A value the check loads the config with (any one the parameter may take)."""
        return self.values()[0] if self.discrete else self.bounds[0]


@dataclass(frozen=True)
class Objective:
    """What a trial is scored by: a metric's final value, and whether higher or lower is better."""

    metric: str
    direction: str  # maximize or minimize


@dataclass(frozen=True)
class SweepSpec:
    """A sweep, checked: ``trials`` is the number of trials to run (a grid's: its combinations)."""

    parameters: tuple[Parameter, ...]
    search: str
    objective: Objective
    trials: int
    seed: int = 0
    sampler: dict | None = None
    pruner: dict | None = None
    jobs: int = 1
    raw: dict = field(default_factory=dict)  # what the summary records: the section as given, flags applied


def override(key: str, value: Any) -> str:
    """``key=value`` with the value written as YAML reads it back (JSON is YAML: strings stay strings)."""
    import json

    return f"{key}={json.dumps(value)}"


def parse(
    section: Any,
    where: Where,
    *,
    monitor: str,
    mode: str,
    grid: list[str] = (),  # type: ignore[assignment]
    random_: list[str] = (),  # type: ignore[assignment]
    search: str | None = None,
    trials: int | None = None,
    jobs: int | None = None,
) -> SweepSpec:
    """The sweep of a config's ``sweep:`` section (None: none) and the flags; ConfigError naming each problem."""
    problems: list[Problem] = []

    def report(path: tuple, message: str, hint: str | None = None) -> None:
        problems.append(Problem(where(path), ".".join(map(str, path)), message, hint))

    section = {} if section is None else section
    if not isinstance(section, Mapping):
        report(
            ("sweep",), f"received {describe(section)}, expected a mapping (parameters, search, objective, trials...)"
        )
        raise ConfigError(problems)
    for key in section:
        if key not in SECTION_KEYS:
            report(("sweep", key), "unknown key", suggest(str(key), SECTION_KEYS))
    parameters: dict[str, Parameter] = {}
    given = section.get("parameters", {})
    if not isinstance(given, Mapping):
        report(
            ("sweep", "parameters"), f"received {describe(given)}, expected a mapping of override key: {{kind: values}}"
        )
        given = {}
    for key, body in given.items():
        parameter = _parameter(str(key), body, functools.partial(_at, report, ("sweep", "parameters", key)))
        if parameter is not None:
            parameters[parameter.key] = parameter
    flags = [("--grid", text, True) for text in grid] + [("--random", text, False) for text in random_]
    for flag, text, is_grid in flags:
        parameter = _flag(text, is_grid, functools.partial(_on_command_line, problems, flag))
        if parameter is not None:
            parameters[parameter.key] = parameter

    chosen = search or section.get("search") or ("random" if random_ else "grid")
    if chosen not in SEARCHES:
        at = ("--search",) if search else ("sweep", "search")
        report(at, f"received {describe(chosen)}, expected one of {', '.join(SEARCHES)}")
    budget = trials if trials is not None else section.get("trials")
    if budget is not None and (isinstance(budget, bool) or not isinstance(budget, int) or budget < 1):
        report(("sweep", "trials"), f"received {describe(budget)}, expected an integer >= 1")
        budget = None
    workers = jobs if jobs is not None else section.get("jobs", 1)
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        report(("sweep", "jobs"), f"received {describe(workers)}, expected an integer >= 1")
    seed = section.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        report(("sweep", "seed"), f"received {describe(seed)}, expected an integer >= 0")
    objective = _objective(section.get("objective"), monitor, mode, report)
    for key in ("sampler", "pruner"):
        node = section.get(key)
        if node is not None and (not isinstance(node, Mapping) or "class" not in node):
            report(
                ("sweep", key),
                f"received {describe(node)}, expected a mapping with a 'class' key (e.g. class: optuna.pruners.MedianPruner)",
            )
        elif node is not None and chosen != "optuna":
            report(("sweep", key), f"a {key} is Optuna's: it needs search: optuna (the search is {chosen})")
    if not parameters and not problems:
        report(("sweep", "parameters"), "no parameter to sweep: give sweep.parameters, --grid or --random")
    if chosen == "grid":
        for parameter in parameters.values():
            if not parameter.discrete:
                report(
                    ("sweep", "parameters", parameter.key),
                    f"a grid needs a choice, range or int; {parameter.kind} is continuous (use search: random or optuna)",
                )
        if budget is not None:
            at = ("--trials",) if trials is not None else ("sweep", "trials")
            report(at, f"received {budget}: a grid runs every combination; trials is for random and optuna searches")
    elif budget is None and not problems:
        report(("sweep", "trials"), f"a {chosen} search needs a budget: sweep.trials or --trials N")
    if problems:
        raise ConfigError(problems)
    grid_size = math.prod(len(p.values()) for p in parameters.values()) if chosen == "grid" else 0
    raw = {**dict(section), "search": chosen, "trials": budget, "jobs": workers}
    raw["parameters"] = {p.key: {p.kind: list(p.bounds)} for p in parameters.values()}
    raw["objective"] = {"metric": objective.metric, "direction": objective.direction}
    return SweepSpec(
        parameters=tuple(parameters.values()),
        search=chosen,
        objective=objective,
        trials=grid_size if chosen == "grid" else int(budget),  # type: ignore[arg-type]
        seed=seed,
        sampler=dict(section["sampler"]) if section.get("sampler") else None,
        pruner=dict(section["pruner"]) if section.get("pruner") else None,
        jobs=workers,
        raw=raw,
    )


def _at(report: Callable[[tuple, str], None], path: tuple, message: str) -> None:
    report(path, message)


def _on_command_line(problems: list[Problem], flag: str, message: str) -> None:
    problems.append(Problem(COMMAND_LINE, flag, message))


def _objective(node: Any, monitor: str, mode: str, report) -> Objective:
    default = Objective(monitor, "maximize" if mode == "max" else "minimize")
    if node is None:
        return default
    if not isinstance(node, Mapping):
        report(("sweep", "objective"), f"received {describe(node)}, expected a mapping with metric and direction")
        return default
    for key in node:
        if key not in ("metric", "direction"):
            report(("sweep", "objective", key), "unknown key", suggest(str(key), ("metric", "direction")))
    metric = node.get("metric", monitor)
    if not isinstance(metric, str) or not metric:
        report(("sweep", "objective", "metric"), f"received {describe(metric)}, expected a metric name such as val/acc")
    direction = node.get("direction", default.direction if metric == monitor else None)
    if direction is None:
        report(
            ("sweep", "objective", "direction"),
            f"the objective {metric} is not trainer.monitor: say maximize or minimize",
        )
    elif direction not in DIRECTIONS:
        report(("sweep", "objective", "direction"), f"received {describe(direction)}, expected maximize or minimize")
    return Objective(str(metric), DIRECTIONS.get(str(direction), "minimize"))


def _parameter(key: str, body: Any, report: Callable[[str], None]) -> Parameter | None:
    """``{kind: values}`` -> a Parameter; None (reported) when it is malformed."""
    if not isinstance(body, Mapping) or len(body) != 1:
        report(f"received {describe(body)}, expected one of {{{', '.join(f'{k}: ...' for k in KINDS)}}}")
        return None
    [(kind, values)] = body.items()
    if kind not in KINDS:
        report(f"unknown kind {kind!r}, expected one of {', '.join(KINDS)}" + _hint(kind))
        return None
    return _bounded(key, str(kind), values, report)


def _flag(text: str, is_grid: bool, report: Callable[[str], None]) -> Parameter | None:
    """``key=v1,v2`` (--grid: a choice) or ``key=KIND:a,b`` (--random) -> a Parameter."""
    key, sep, rest = text.partition("=")
    expected = "key=v1,v2,..." if is_grid else "key=KIND:a,b (KIND: " + ", ".join(KINDS) + ")"
    if not sep or not key or not rest:
        report(f"received {text!r}, expected {expected}")
        return None
    kind = "choice"
    if not is_grid:
        kind, sep, rest = rest.partition(":")
        if not sep or kind not in KINDS:
            report(f"received {text!r}, expected {expected}" + _hint(kind))
            return None
    try:
        values = [parse_yaml(item) for item in rest.split(",")]  # as an override's value reads: 1e-4 is a float
    except yaml.YAMLError:
        report(f"received {text!r}: a value is not YAML")
        return None
    return _bounded(key, kind, values, lambda message: report(f"{text!r}: {message}"))


def _hint(kind: str) -> str:
    close = suggest(str(kind), KINDS)
    return f"; did you mean {close}?" if close else ""


def _bounded(key: str, kind: str, values: Any, report: Callable[[str], None]) -> Parameter | None:
    if not isinstance(values, list) or not values:
        report(f"{kind}: received {describe(values)}, expected a non-empty list")
        return None
    if kind == "choice":
        return Parameter(key, kind, tuple(values))
    numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)
    if kind == "range":
        if not numbers or len(values) not in (2, 3):
            report(
                f"range: received {describe(values)}, expected [start, stop] or [start, stop, step] (numbers; stop included)"
            )
            return None
        start, stop, step = (*values, 1) if len(values) == 2 else values
        if step <= 0 or stop < start:
            report(f"range: received {describe(values)}, expected start <= stop and a step > 0")
            return None
        return Parameter(key, kind, (start, stop, step))
    if not numbers or len(values) != 2 or not values[0] < values[1]:
        report(f"{kind}: received {describe(values)}, expected [low, high] with low < high")
        return None
    if kind == "int" and not all(isinstance(v, int) for v in values):
        report(f"int: received {describe(values)}, expected two integers [low, high] (high included)")
        return None
    if kind == "log-uniform" and values[0] <= 0:
        report(f"log-uniform: received {describe(values)}, expected 0 < low < high")
        return None
    return Parameter(key, kind, (values[0], values[1]) if kind == "int" else (float(values[0]), float(values[1])))


def _tidy(value: Any) -> Any:
    """A range's float steps without their rounding noise (0.1 * 3 is 0.30000000000000004)."""
    return round(value, 12) if isinstance(value, float) else value
