"""What ``expresso report`` shows, read from disk: each sweep under a folder, and the runs outside any sweep, as groups of trials.

A sweep's group comes from its sweep.json (parameters and their kinds, the
objective and its direction, each trial's status and objective) and its
trials' run folders (learning curves, a failed run's error, how far a
pruned one got). The runs outside sweeps make one group of their own: their
parameters are the settings that differ between them (read.py's
``varying``), their objective the metric asked for, else their monitored
one. Torch-free and numpy-free: the figures are drawn elsewhere.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import BadInput
from ..runs.folder import RunFolder, SweepFolder, find_runs
from ..runs.record import read_record
from .read import UNREADABLE, ReadRun, checked_root, read_run, varying

MAX_PARAMETERS = 8  # runs outside a sweep: the first settings that differ, not every one of a wide config


class ReportError(BadInput, ValueError):
    """A folder with nothing to report (no run, no sweep): one line naming it, exit 2."""


@dataclass
class Trial:
    """One trial (or run) as the report shows it; ``run`` is None when its process left no readable run folder."""

    label: str
    status: str
    objective: float | None  # the scored value: a completed trial's objective, else None
    params: dict[str, Any]
    run: ReadRun | None = None
    reached: float | None = None  # the objective metric's last logged value (a pruned trial's too)
    note: str = ""  # a failed run's error, where a pruned one stopped, why there is no run folder


@dataclass
class Group:
    """A sweep, or the runs outside sweeps: its trials, what they vary and what scores them."""

    title: str
    path: Path
    metric: str | None
    direction: str  # maximize or minimize
    parameters: dict[str, str] = field(default_factory=dict)  # key -> kind (choice, log-uniform, ...; "" unknown)
    trials: list[Trial] = field(default_factory=list)

    def ranked(self) -> list[Trial]:
        """Scored trials best first, then the others in their order."""
        scored = sorted(
            ((t.objective, t) for t in self.trials if t.objective is not None),
            key=lambda pair: pair[0],
            reverse=self.direction == "maximize",
        )
        return [t for _, t in scored] + [t for t in self.trials if t.objective is None]


def read_groups(path: Path | str, metric: str | None = None) -> list[Group]:
    """The sweeps under ``path`` (one if it is a sweep folder) and a group of the other runs; ReportError if none."""
    if Path(path).exists() and not Path(path).is_dir():
        raise ReportError(f"{path}: not a folder; expected a runs root, an experiment folder or a sweep folder")
    root = checked_root(path)
    sweeps = sorted({found.parent for found in root.glob(f"**/{SweepFolder.SUMMARY}")})
    groups = [_sweep(SweepFolder(folder), metric) for folder in sweeps]
    loose = [folder for folder in find_runs(root) if not any(s in folder.path.parents for s in sweeps)]
    if loose:
        groups.append(_runs(root, loose, metric))
    if not groups:
        raise ReportError(
            f"{path}: holds no run and no sweep; expected a runs root, an experiment folder or a sweep folder"
        )
    return groups


def _sweep(folder: SweepFolder, metric: str | None) -> Group:
    try:
        summary = json.loads(folder.summary.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ReportError(f"{folder.summary}: cannot be read ({exc})") from None
    spec = summary.get("sweep") or {}
    objective = spec.get("objective") or {}
    rows = summary.get("results") or []
    chosen = metric or objective.get("metric") or _monitor(folder, rows)  # a series has no objective: the runs' monitor
    direction = objective.get("direction") if chosen == objective.get("metric") else None
    parameters = {key: next(iter(body), "") for key, body in (spec.get("parameters") or {}).items()}
    group = Group(f"sweep {summary.get('name', '?')} / {folder.path.name}", folder.path, chosen, direction or "")
    for row in rows:
        params = row.get("params") or {}
        for key in params:
            parameters.setdefault(key, "")
        run_dir = folder.path / Path(str(row.get("run_dir", ""))).name if row.get("run_dir") else None
        trial = _trial(f"trial {row.get('number')}", str(row.get("status")), params, run_dir, group)
        if chosen == objective.get("metric") and metric is None:
            trial.objective = _number(row.get("objective")) if trial.status == "completed" else None
        group.trials.append(trial)
    group.parameters = parameters
    _settle(group)
    return group


def _monitor(folder: SweepFolder, rows: list[dict]) -> str | None:
    """The monitored metric of the sweep's first trial that recorded one."""
    for row in rows:
        try:
            summary = read_record(folder.path / Path(str(row.get("run_dir", ""))).name / RunFolder.RECORD).get(
                "summary"
            )
        except (OSError, ValueError):
            continue
        monitor = (summary or {}).get("monitor")
        if isinstance(monitor, str):
            return monitor
    return None


def _runs(root: Path, folders: list[RunFolder], metric: str | None) -> Group:
    read = []
    for folder in folders:
        try:
            read.append(read_run(folder))
        except UNREADABLE:
            continue
    keys = varying([run.config for run in read])[:MAX_PARAMETERS]
    monitors = {run.record.get("summary", {}).get("monitor") for run in read} - {None}
    chosen = metric or (monitors.pop() if len(monitors) == 1 else None)
    group = Group(f"runs under {root}", root, chosen, "", {key: "" for key in keys})
    for run in read:
        label = f"{run.experiment}/{run.run_id}"
        group.trials.append(
            _trial(label, str(run.row()["status"]), {k: run.config.get(k) for k in keys}, None, group, run)
        )
    _settle(group)
    return group


def _trial(
    label: str, status: str, params: dict, run_dir: Path | None, group: Group, run: ReadRun | None = None
) -> Trial:
    trial = Trial(label, status, None, params, run)
    if run is None and run_dir is not None and (run_dir / RunFolder.RECORD).is_file():
        try:
            trial.run = read_run(RunFolder(run_dir))
        except UNREADABLE as exc:
            trial.note = f"{run_dir}: unreadable run folder ({exc})"
    if trial.run is None:
        trial.note = trial.note or "no run folder: the trial's process ended before its run began"
        return trial
    metrics = trial.run.metrics()
    if group.metric:
        trial.reached = _number(metrics.get(f"last.{group.metric}"))
        if status == "completed":
            trial.objective = _number(metrics.get(f"final.{group.metric}", metrics.get(f"last.{group.metric}")))
    error = trial.run.record.get("error")
    if isinstance(error, dict):
        trial.note = f"{error.get('type', 'error')}: {error.get('message', '')}"
    elif status == "pruned":
        epochs = (trial.run.record.get("summary") or {}).get("epochs")
        shown = "" if trial.reached is None else f" with {group.metric} = {trial.reached:.4g}"
        trial.note = f"stopped by the sweep's pruner after epoch {epochs}{shown}"
    return trial


def _settle(group: Group) -> None:
    """The direction where the sweep does not say: the runs' mode for their monitored metric, else by its name."""
    if group.direction:
        return
    modes = {
        (t.run.record.get("summary") or {}).get("mode")
        for t in group.trials
        if t.run is not None and (t.run.record.get("summary") or {}).get("monitor") == group.metric
    } - {None}
    if len(modes) == 1:
        group.direction = "maximize" if modes.pop() == "max" else "minimize"
    else:
        group.direction = "minimize" if group.metric and "loss" in group.metric else "maximize"


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else None
