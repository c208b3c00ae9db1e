"""``load_runs`` and ``load_history``: the runs under a folder as pandas DataFrames, to sort, filter, group and plot.

The gin template's ``load_C``/``load_H`` (aliases kept for its users): one
row per run (its settings, metrics, status and duration; read.py names the
columns), and the metrics.csv rows of runs in long form (one row per run,
step and metric), ready for ``pivot_table`` or a seaborn ``lineplot``.
pandas comes with the ``analysis`` extra and is imported only here, when
called.
"""

from __future__ import annotations

import difflib
import warnings
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from ..errors import BadInput
from ..runs.curves import HistoryError, read_history
from ..runs.folder import RunFolder, find_runs
from .read import IDENTITY, PROGRESS, checked_root, read_runs

HISTORY_COLUMNS = ("experiment", "run_id", "path", "epoch", "step", "metric", "value")
Filter = Mapping[str, Any] | str


class AnalysisError(BadInput, ValueError):
    """A filter naming a column the runs do not have, or runs given in a form not understood: one line, what was expected."""


def load_runs(root: str | Path = "runs", filter: Filter | list[Filter] | tuple[Filter, ...] | None = None) -> Any:
    """The runs under ``root`` (at any depth, as ``expresso runs`` finds them) as a DataFrame, one row per run folder.

    Columns: ``experiment``, ``run_id``, ``path``, ``status`` (``crashed`` for a
    run whose process is gone), ``started_at``, ``ended_at``, ``duration``
    (seconds), ``epochs``, ``step``, ``monitor``, ``mode``, ``best``,
    ``best_epoch``, then ``final.<metric>`` (the final evaluation),
    ``last.<metric>`` (the last epoch) and every setting of the config by its
    dotted key (``optimizer.lr``). A run without a value has None/NaN there.

    ``filter`` keeps the rows that match: a mapping of column to value (equal)
    or to a callable (true for the value), a pandas query string
    (``"`optimizer.lr` < 0.01 and status == 'completed'"``), or a list of
    them, all of which must match. A run folder whose run.json or config.yaml
    cannot be read is skipped with a warning naming it.
    """
    pd = _pandas()
    runs, unreadable = read_runs(Path(root))
    for path in unreadable:
        warnings.warn(f"skipped {path}: unreadable {RunFolder.RECORD} or {RunFolder.CONFIG}", stacklevel=2)
    rows = [run.row() for run in runs]
    columns = list(dict.fromkeys([*IDENTITY, *PROGRESS, *(key for row in rows for key in row)]))
    frame = pd.DataFrame(rows, columns=columns)
    if filter is None or isinstance(filter, (str, Mapping)):
        filters = [] if filter is None else [filter]
    elif isinstance(filter, (list, tuple)):
        filters = list(filter)
    else:
        filters = [filter]  # refused by _filtered, naming what it received
    for each in filters:
        frame = _filtered(frame, each)
    return frame.reset_index(drop=True)


def load_history(runs: Any = "runs") -> Any:
    """The metrics.csv rows of ``runs`` as a long DataFrame: experiment, run_id, path, epoch, step, metric, value.

    ``runs``: a DataFrame from ``load_runs`` (its ``path`` column), a list of
    run folders, or one folder (a run folder, or a root: every run under it).
    One row per cell that holds a number, in each file's row and column
    order; a run that logged nothing yet (no metrics.csv) has no rows.
    """
    pd = _pandas()
    rows: list[tuple[Any, ...]] = []
    for folder in _folders(runs, pd):
        if not folder.history.is_file():
            continue
        try:
            history = read_history(folder.history, folder.path.name)
        except HistoryError as exc:  # unreadable, or a header and no values yet: no rows, and a word why
            warnings.warn(f"skipped {exc}", stacklevel=2)
            continue
        identity = _identity(folder)
        for values in history.rows:
            position = (int(values["epoch"]) if "epoch" in values else None, int(values["step"]))
            rows.extend((*identity, *position, name, values[name]) for name in history.columns if name in values)
    return pd.DataFrame(rows, columns=list(HISTORY_COLUMNS))


# The gin template's names (load_C: the configs, load_H: the histories).
load_C = load_runs
load_H = load_history


def _filtered(frame: Any, each: Filter) -> Any:
    if isinstance(each, str):
        try:
            return frame.query(each)
        except Exception as exc:  # noqa: BLE001 - pandas raises many kinds for a bad expression: one line says which
            raise AnalysisError(
                f"filter {each!r}: not a query these runs answer ({type(exc).__name__}: {exc})"
            ) from None
    if not isinstance(each, Mapping):
        raise AnalysisError(
            f"filter: received a {type(each).__name__} ({each!r}); expected a mapping of column to value or callable,"
            " a query string, or a list of them"
        )
    for column, wanted in each.items():
        if column not in frame.columns:
            close = difflib.get_close_matches(str(column), map(str, frame.columns), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise AnalysisError(
                f"filter: no column {column!r} in these runs{hint}; they have {len(frame.columns)}: load_runs(...).columns"
            )
        frame = frame[frame[column].map(_matcher(wanted)).astype(bool)]
    return frame


def _matcher(wanted: Any) -> Callable[[Any], bool]:
    if callable(wanted):
        return wanted
    return lambda value: _missing(wanted) if _missing(value) else bool(value == wanted)


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and value != value)  # NaN: pandas' missing number


def _folders(runs: Any, pd: Any) -> list[RunFolder]:
    if isinstance(runs, pd.DataFrame):
        if "path" not in runs.columns:
            raise AnalysisError("runs: received a DataFrame without a 'path' column; expected one from load_runs")
        return [RunFolder(Path(path)) for path in runs["path"]]
    if isinstance(runs, (str, Path)):
        return find_runs(checked_root(runs))
    if isinstance(runs, Iterable):
        return [RunFolder.open(path) for path in runs]
    raise AnalysisError(
        f"runs: received a {type(runs).__name__}; expected a DataFrame from load_runs, a list of run folders or a folder"
    )


def _identity(folder: RunFolder) -> tuple[str, str, str]:
    """experiment, run_id and path, as load_runs names the run (the record's, else the folders')."""
    from ..runs.record import read_record

    try:
        record = read_record(folder.record)
    except ValueError:
        record = {}
    return (
        str(record.get("name") or folder.path.parent.name),
        str(record.get("run_id") or folder.path.name),
        str(folder.path),
    )


def _pandas() -> Any:
    try:
        import pandas
    except ImportError:
        raise ImportError(
            "expresso.load_runs and load_history need pandas: pip install torch-expresso[analysis]"
        ) from None
    return pandas
