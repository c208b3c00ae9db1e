"""``expresso runs compare RUN RUN...``: runs side by side, a column each: what sets them apart, then how they did.

Rows: the experiment, status and duration (seconds), the settings whose values differ between
the runs (``--all``: every setting), then the metrics from each run.json's
summary: the monitored metric's best value and epoch, ``final.<metric>``
(the final evaluation) and ``last.<metric>`` (the last epoch). Settings and
metrics are named as ``expresso.load_runs`` names its columns
(analysis/read.py). A RUN is a run folder, or the id of one under the runs
root (``--runs-root``, default ./runs).
"""

from __future__ import annotations

import os
from argparse import Namespace
from pathlib import Path
from typing import Any

from . import UsageError
from .table import distinct_short, print_table, text

METRIC_FORMAT = ".6g"  # as `expresso train` prints its final metrics


def run(args: Namespace) -> int:
    import yaml

    from ..analysis.read import PROGRESS, duration, read_run, varying
    from ..errors import BadInput
    from ..runs.record import shown_status

    folders = list(
        {folder.path.resolve(): folder for folder in (_find(run, args.runs_root) for run in args.runs)}.values()
    )
    if len(folders) < 2:
        given = " ".join(args.runs) or "none"
        raise UsageError(
            f"runs compare: received {len(folders)} run{'s' * (len(folders) != 1)} ({given}); expected two or more"
        )
    runs = []
    for folder in folders:
        try:
            runs.append(read_run(folder))
        except BadInput:  # a bad run.json (RecordError): its one line names the file and field already
            raise
        except (OSError, ValueError, yaml.YAMLError, RecursionError) as exc:  # ValueError: not UTF-8, say
            reason = getattr(exc, "strerror", None) or str(exc).splitlines()[0]
            raise UsageError(f"{folder.config}: unreadable ({reason})") from None
    configs = [each.config for each in runs]
    settings = list(dict.fromkeys(key for flat in configs for key in flat)) if args.all else varying(configs)
    ids = [each.run_id for each in runs]
    labels = ids if len(set(ids)) == len(ids) else [f"{each.experiment}/{each.run_id}" for each in runs]
    rows = [
        ["run", *labels],
        ["experiment", *(each.experiment for each in runs)],
        ["status", *(shown_status(each.record) for each in runs)],
        ["duration", *(_number(duration(each.record)) for each in runs)],
    ]
    rows += [[key, *distinct_short([text(flat.get(key)) for flat in configs])] for key in settings]
    summaries = [each.record.get("summary") or {} for each in runs]
    rows += [[key, *(_number(summary.get(key)) for summary in summaries)] for key in PROGRESS]
    metrics = [each.metrics() for each in runs]
    names = list(dict.fromkeys(name for found in metrics for name in found))
    rows += [[name, *(_number(found.get(name)) for found in metrics)] for name in names]
    print_table(rows)
    if not settings:
        print("(no setting differs between these runs; --all shows them all)")
    return 0


def _find(run: str, runs_root: str | None) -> Any:
    """The run folder ``run`` names: a path to one, or the id of one under the runs root."""
    from ..runs.folder import RunFolder, find_runs

    path = Path(run)
    try:
        exists = path.exists()
    except OSError:  # a name too long to look up: open says so, in one line
        exists = True
    if exists or os.sep in run or not run.strip():
        return RunFolder.open(path)
    root = Path(runs_root or "runs")
    try:
        searched = root.is_dir()  # no runs root: no run id under it either
    except OSError:
        searched = False
    found = [folder for folder in find_runs(root) if folder.path.name == run] if searched else []
    if len(found) > 1:
        raise UsageError(
            f"runs compare: {run}: the id of {len(found)} runs under {root} ({', '.join(str(f.path) for f in found)});"
            " give the folder instead"
        )
    if not found:
        raise UsageError(f"runs compare: {run[:200]}: no such run folder, nor a run id under {root}")
    return found[0]


def _number(value: Any) -> str:
    if isinstance(value, float):
        return format(value, METRIC_FORMAT)
    return "-" if value is None else str(value)
