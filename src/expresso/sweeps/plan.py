"""Which trials a sweep runs: each a config, its overrides and the parameters they set, numbered from 0.

A grid's trials are every combination (the last parameter varies fastest), a
random search's ``trials`` samples drawn with ``sweep.seed``, a ``series:``
list's one per entry, several configs' (or a folder's) one per config. Optuna
plans no trial ahead: the study asks for each (study.py). The same command
plans the same trials, and hashes to the same sweep id (the configs as named,
their resolved trees, the overrides and the sweep, --jobs aside), so a re-run
finds the sweep's folder and its finished trials again.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..config import Config, ConfigError, Problem, load_config
from ..config.files import config_files_in, is_dir
from ..runs.folder import SweepFolder
from .spec import SweepSpec, override

STRIPPED = ("sweep", "series")  # what a trial's config leaves out: a trial is one run


@dataclass(frozen=True)
class PlannedTrial:
    """One trial: ``python -m expresso train CONFIG *OVERRIDES`` into its run folder."""

    number: int
    config: Path
    overrides: tuple[str, ...]
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class Sweep:
    """A planned sweep: where it lives, what it searches (``spec``: None for a series) and its trials."""

    name: str
    folder: SweepFolder
    sweep_id: str
    configs: list[Path]
    overrides: list[str]
    spec: SweepSpec | None
    trials: list[PlannedTrial]  # empty for an Optuna search: the study asks for each trial
    base: Path | None = None  # an Optuna search's one config

    @property
    def optuna(self) -> bool:
        return self.spec is not None and self.spec.search == "optuna"

    @property
    def budget(self) -> int:
        return self.spec.trials if self.spec is not None else len(self.trials)

    def trial_overrides(self, config: Path, params: dict[str, Any]) -> tuple[str, ...]:
        """The base overrides, then the trial's parameters, then the sweep sections left out."""
        return (*self.overrides, *(override(k, v) for k, v in params.items()), *_stripped(config, self.overrides))


def config_files(paths: Sequence[str]) -> list[Path]:
    """The config files named: a folder stands for the config files directly in it (sorted by name)."""
    found: list[Path] = []
    for text in paths:
        path = Path(text)
        if is_dir(path):
            inside = config_files_in(path)
            if not inside:
                raise ConfigError(
                    [Problem(str(path), "", "a folder with no config file (.yaml, .yml, .json, .py) in it")]
                )
            found += sorted(inside)
        else:
            found.append(path)
    return found


def plan_series(paths: Sequence[str], overrides: list[str], runs_root: Path, name: str | None) -> Sweep:
    """Several configs, a folder of configs, or a config with ``series:``: one trial per config and series entry."""
    configs = config_files(paths)
    trials: list[PlannedTrial] = []
    trees = []
    for path in configs:
        config = load_config(path, overrides)
        if "sweep" in config:
            raise ConfigError(
                [Problem(config.where(("sweep",)), "sweep", "a sweep runs with `expresso sweep CONFIG`, not train")]
            )
        entries = config.get("series") or [{}]
        for index, entry in enumerate(entries):
            for key in entry:
                if not isinstance(key, str) or not key:
                    raise ConfigError(
                        [
                            Problem(
                                config.where(("series", index)),
                                f"series.{index}",
                                f"received key {key!r}, expected an override key such as optimizer.lr",
                            )
                        ]
                    )
            trials.append(PlannedTrial(len(trials), path, (), dict(entry)))
        trees.append(config.to_dict())
    sweep_name = name or _common_name(trees, configs)
    sweep_id = _digest({"configs": [str(p) for p in configs], "trees": trees, "overrides": overrides})
    sweep = Sweep(sweep_name, SweepFolder.of(runs_root, sweep_name, sweep_id), sweep_id, configs, overrides, None, [])
    sweep.trials = [
        PlannedTrial(t.number, t.config, sweep.trial_overrides(t.config, t.params), t.params) for t in trials
    ]
    return sweep


def plan_sweep(
    path: str,
    overrides: list[str],
    runs_root: Path,
    name: str | None,
    spec: SweepSpec,
    study: str | None,
    config: Config,
) -> Sweep:
    """``expresso sweep CONFIG``: a grid's or a random search's trials, or none for Optuna (the study asks)."""
    sweep_name = name or config["name"]
    sweep_id = study or _digest(
        {
            "config": str(path),
            "tree": config.to_dict(),
            "overrides": overrides,
            "spec": {k: v for k, v in spec.raw.items() if k != "jobs"},
        }
    )
    folder = SweepFolder.of(runs_root, sweep_name, sweep_id)
    sweep = Sweep(sweep_name, folder, sweep_id, [Path(path)], overrides, spec, [], base=Path(path))
    if spec.search == "grid":
        keys = [p.key for p in spec.parameters]
        combos = itertools.product(*(p.values() for p in spec.parameters))
        params = [dict(zip(keys, combo, strict=True)) for combo in combos]
    elif spec.search == "random":
        rng = random.Random(spec.seed)
        params = [{p.key: p.sample(rng) for p in spec.parameters} for _ in range(spec.trials)]
    else:
        params = []
    sweep.trials = [PlannedTrial(n, Path(path), sweep.trial_overrides(Path(path), p), p) for n, p in enumerate(params)]
    return sweep


def check_trials(sweep: Sweep, *, classes: bool) -> None:
    """Load every trial's config (an Optuna search's with one value of each parameter): ConfigError before anything runs.

    ``classes`` (``--check``): also import every class and check its arguments, as ``expresso train`` does;
    without it the load is torch-free (the sweep process stays light: each trial checks its classes itself,
    before its run folder is created).
    """
    probes = sweep.trials
    if sweep.optuna and sweep.spec is not None and sweep.base is not None:
        params = {p.key: p.probe() for p in sweep.spec.parameters}
        probes = [PlannedTrial(0, sweep.base, sweep.trial_overrides(sweep.base, params), params)]
    for trial in probes:
        load_config(trial.config, list(trial.overrides), check=classes)


def _stripped(config: Path, overrides: list[str]) -> tuple[str, ...]:
    tree = load_config(config, overrides)
    return tuple(f"~{key}" for key in STRIPPED if key in tree)


def _common_name(trees: list[dict], configs: list[Path]) -> str:
    """The experiment folder of a series: the configs' name when they share one, else their folder's."""
    names = {tree["name"] for tree in trees}
    if len(names) == 1:
        return names.pop()
    return configs[0].resolve().parent.name or "series"


def _digest(what: Any) -> str:
    """A short, stable id of a sweep's plan: the same command gives the same id."""
    return hashlib.sha256(json.dumps(what, sort_keys=True, default=str).encode()).hexdigest()[:10]
