"""A sweep's summary: sweep.json (what was swept, every trial's outcome) and trials.csv (one row per trial).

Both are rewritten whole (atomically) after every trial, so a sweep killed
midway leaves a summary of what finished; a re-run brings it up to date.
A trial's status is its run's (``completed``, ``failed``, ``interrupted``,
``running``), ``pruned`` when the study's pruner stopped it, or ``pending``
when it has not started; its objective is the final value of the objective
metric (the selected weights' evaluation), else its last epoch's;
``launched_at`` and ``finished_at`` are when its process started and ended
(UTC, start-up included).
"""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path
from typing import Any

from ..runs.atomic import atomic_write
from ..runs.folder import RunFolder
from ..runs.record import RecordError, read_record
from .plan import Sweep


def run_outcome(folder: RunFolder, metric: str) -> tuple[str, float | None]:
    """(status, objective) of one trial's run folder: ``pending`` when it holds no record yet."""
    try:
        record = read_record(folder.record)
    except (RecordError, OSError):
        return "pending", None
    summary = record.get("summary") or {}
    final = (summary.get("final") or {}).get("metrics") or {}
    value = final.get(metric, (summary.get("metrics") or {}).get(metric))
    objective = float(value) if isinstance(value, (int, float)) and math.isfinite(value) else None
    return str(record.get("status", "unknown")), objective


def write_summary(sweep: Sweep, rows: list[dict[str, Any]]) -> None:
    """sweep.json and trials.csv from ``rows`` (number, status, objective, params), sorted by trial number."""
    rows = sorted(rows, key=lambda row: row["number"])
    for row in rows:
        row["run_dir"] = str(sweep.folder.trial(row["number"]).path)
    spec = sweep.spec
    objective = spec.objective if spec is not None else None
    scored = [row for row in rows if row["objective"] is not None and row["status"] == "completed"]
    best = None
    if scored and objective is not None:
        pick = max if objective.direction == "maximize" else min
        best = pick(scored, key=lambda row: row["objective"])["number"]
    summary = {
        "name": sweep.name,
        "sweep_id": sweep.sweep_id,
        "configs": [str(path) for path in sweep.configs],
        "overrides": sweep.overrides,
        "sweep": spec.raw if spec is not None else None,
        "trials": sweep.budget,
        "counts": {
            status: sum(row["status"] == status for row in rows) for status in sorted({row["status"] for row in rows})
        },
        "best_trial": best,
        "results": rows,
    }
    atomic_write(sweep.folder.summary, json.dumps(summary, indent=2, default=str) + "\n", durable=False)
    keys = sorted({key for row in rows for key in row["params"]})
    text = io.StringIO()
    writer = csv.writer(text)
    writer.writerow(["trial", "status", "objective", *keys, "config", "run_dir"])
    for row in rows:
        writer.writerow(
            [
                row["number"],
                row["status"],
                "" if row["objective"] is None else row["objective"],
                *(_cell(row["params"].get(k)) for k in keys),
                row.get("config", ""),
                row["run_dir"],
            ]
        )
    atomic_write(sweep.folder.table, text.getvalue(), durable=False)


def _cell(value: Any) -> str:
    return "" if value is None else value if isinstance(value, str) else json.dumps(value)


def read_summary(path: Path) -> dict[str, Any]:
    return json.loads(Path(path).read_text())
