"""One run folder as one flat row: its record's identity, status, duration and metrics, and its config's settings.

The one reader of run folders for comparison: ``expresso runs`` (the table),
``expresso runs compare`` and ``expresso.load_runs`` all read them here, so
the three name a setting or a metric the same way:

- a setting by its dotted key path in config.yaml (``optimizer.lr``; a list
  stays one value, as the config writes it);
- ``final.<metric>``: the final evaluation with the fit's chosen weights
  (run.json ``summary.final.metrics``, e.g. ``final.test/acc``);
- ``last.<metric>``: the last epoch's logged values (``summary.metrics``);
- ``best`` and ``best_epoch``: the monitored metric's best value and its
  epoch (``monitor`` names the metric, ``mode`` says min or max).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from ..config.files import read_written_yaml
from ..errors import BadInput
from ..runs.folder import RunFolder, find_runs
from ..runs.record import read_record, shown_status

FINAL = "final."
LAST = "last."
# The columns every row has, in order, before its metrics and its settings.
IDENTITY = ("experiment", "run_id", "path", "status", "started_at", "ended_at", "duration")
PROGRESS = ("epochs", "step", "monitor", "mode", "best", "best_epoch")
TIME_FORMAT = "%Y-%m-%dT%H:%M:%S%z"  # run.json's started_at and ended_at (record.now)
# Failures of reading one run: RecordError is a ValueError; RecursionError, a config nested past reason.
UNREADABLE = (OSError, ValueError, yaml.YAMLError, RecursionError)


class RunsRootError(BadInput, ValueError):
    """A runs root that is not a folder: bad input (exit 2), one line naming it."""


@dataclass(frozen=True)
class ReadRun:
    """A run folder read: its record (run.json) and its config flattened to dotted keys."""

    folder: RunFolder
    record: dict[str, Any]
    config: dict[str, Any]

    @property
    def run_id(self) -> str:
        return str(self.record.get("run_id") or self.folder.path.name)

    @property
    def experiment(self) -> str:
        return str(self.record.get("name") or "?")

    def metrics(self) -> dict[str, Any]:
        """``final.<metric>`` then ``last.<metric>``, from the record's summary."""
        summary = self.record.get("summary") or {}
        final = summary.get("final")
        final = final if isinstance(final, dict) else {}
        found: dict[str, Any] = {}
        for prefix, values in ((FINAL, final.get("metrics")), (LAST, summary.get("metrics"))):
            if isinstance(values, dict):
                found.update({f"{prefix}{name}": value for name, value in values.items()})
        return found

    def row(self) -> dict[str, Any]:
        """The run as one row: IDENTITY, PROGRESS, its metrics, then its settings (None where it has no value)."""
        summary = self.record.get("summary") or {}
        return {
            "experiment": self.experiment,
            "run_id": self.run_id,
            "path": str(self.folder.path),
            "status": shown_status(self.record),
            "started_at": self.record.get("started_at"),
            "ended_at": self.record.get("ended_at"),
            "duration": duration(self.record),
            **{key: summary.get(key) for key in PROGRESS},
            **self.metrics(),
            **self.config,
        }


def read_run(folder: RunFolder) -> ReadRun:
    """The run in ``folder``; raises one of UNREADABLE if its run.json or config.yaml cannot be read."""
    record = read_record(folder.record)
    config = read_written_yaml(folder.config.read_text())
    return ReadRun(folder, record, flatten(config if isinstance(config, dict) else {}))


def read_runs(root: Path) -> tuple[list[ReadRun], list[Path]]:
    """The runs under ``root`` (at any depth, sorted by path) and the folders whose record or config is unreadable."""
    runs, unreadable = [], []
    for folder in find_runs(checked_root(root)):
        try:
            runs.append(read_run(folder))
        except UNREADABLE:
            unreadable.append(folder.path)
    return runs, unreadable


def checked_root(root: Path | str) -> Path:
    """``root`` if it is a folder; ``RunsRootError`` naming it otherwise."""
    try:
        found = Path(root).is_dir()
    except (OSError, ValueError) as exc:  # a name too long, a NUL byte
        reason = getattr(exc, "strerror", None) or exc
        raise RunsRootError(f"{str(root)[:200]}: not a folder of runs ({reason})") from None
    if not found:
        raise RunsRootError(f"{root}: no such folder of runs")
    return Path(root)


def duration(record: dict[str, Any]) -> float | None:
    """Seconds from ``started_at`` to ``ended_at`` (a resumed run's include its pauses); None for a run not ended."""
    try:
        start = datetime.strptime(record.get("started_at") or "", TIME_FORMAT)
        end = datetime.strptime(record.get("ended_at") or "", TIME_FORMAT)
    except ValueError:
        return None
    return (end - start).total_seconds()


def flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    """A config's settings by dotted key path (``optimizer.lr``): a list stays one value, an empty mapping gives none."""
    if isinstance(tree, dict):
        out: dict[str, Any] = {}
        for key, value in tree.items():
            out.update(flatten(value, f"{prefix}{key}."))
        return out
    return {prefix[:-1]: tree}


def varying(configs: list[dict[str, Any]]) -> list[str]:
    """Config keys whose value differs between the runs (``name`` aside): the hyperparameters worth a column."""
    keys = list(dict.fromkeys(key for flat in configs for key in flat))
    return [key for key in keys if key != "name" and len({repr(flat.get(key)) for flat in configs}) > 1]
