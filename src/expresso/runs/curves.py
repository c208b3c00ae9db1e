"""Learning curves from metrics.csv: what ``expresso plot`` draws and a fit leaves in its run folder as curves.png.

For people who run no tracker, one picture of how training went: the x
axis is the optimizer step for every line, so a per-step value
(``train/batch_loss``, every ``log_every_n_steps`` steps) and the per-epoch
ones (``train/loss``, ``val/...``, at each epoch's last step) share it.
Each run has one colour (a single run: each quantity its own, its train
and val lines alike) and each kind of metric one line style (per step,
training per epoch, validation). By default two panels: the losses, and the
run's monitored metric (``trainer.monitor``) unless it is a loss already
drawn; one chosen metric draws one panel.

matplotlib is imported only to draw (the ``plots`` extra), and only its
object API (``Figure``): no pyplot, no global backend, nothing shown on a
screen. Torch-free: reading a run's history needs no model.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import BadInput
from .atomic import atomic_write

POSITION = ("epoch", "step")
BATCH_LOSS = "train/batch_loss"
LOSSES = re.compile(r"(train/batch_loss|(train|val)/loss(/.+)?)")  # a several-term loss has train/loss/<term> too
FORMATS = ("png", "pdf", "svg")
SPLIT = re.compile(r"^(train|val|test)/(batch_)?")  # train/loss, train/batch_loss and val/loss are one quantity


class HistoryError(BadInput, ValueError):
    """A metrics.csv that cannot be drawn: missing, empty, or without the metric asked for (exit 2, one line)."""


@dataclass(frozen=True)
class RunHistory:
    """One run's metrics.csv as numbers: ``rows`` hold each row's numeric cells (``epoch``, ``step`` and the metrics set)."""

    label: str  # the legend's name for the run
    columns: tuple[str, ...]  # the metrics, in the file's column order (no epoch, step or stage)
    rows: tuple[dict[str, float], ...]
    monitor: str | None = None

    def series(self, metric: str) -> tuple[list[float], list[float]]:
        """The steps and values of the rows that hold ``metric``."""
        points = [(row["step"], row[metric]) for row in self.rows if metric in row]
        return [step for step, _ in points], [value for _, value in points]


def read_history(path: Path, label: str, monitor: str | None = None) -> RunHistory:
    """metrics.csv as written by the History callback; a cell that is empty or not a number (a stage's name) is left out."""
    try:
        with Path(path).open(newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            rows = tuple(_numbers(row) for row in reader)
            header = reader.fieldnames or []
    except FileNotFoundError:
        raise HistoryError(f"{path}: not found (the run logged no row, or its loggers leave out csv)") from None
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise HistoryError(f"{path}: cannot be read ({exc})") from None
    columns = tuple(name for name in header if name not in POSITION and any(name in row for row in rows))
    if not columns:
        raise HistoryError(f"{path}: holds no metric values yet")
    return RunHistory(label, columns, tuple(row for row in rows if "step" in row), monitor)


def _numbers(row: dict[str, Any]) -> dict[str, float]:
    values = {}
    for key, text in row.items():
        if key is None or not text:  # None: cells past the header of a damaged row
            continue
        try:
            values[key] = float(text)
        except (TypeError, ValueError):
            continue
    return values


def panels(runs: Sequence[RunHistory], metric: str | None = None) -> list[tuple[str, list[str]]]:
    """The figure's panels as (title, metrics): ``metric`` alone, or the losses and each run's monitored metric."""
    if metric is not None:
        missing = [run for run in runs if metric not in run.columns]
        if missing:
            run = missing[0]
            raise HistoryError(
                f"--metric {metric}: {run.label} logged no such metric; its metrics: {', '.join(run.columns)}"
            )
        return [(metric, [metric])]
    columns = list(dict.fromkeys(name for run in runs for name in run.columns))
    losses = [name for name in columns if LOSSES.fullmatch(name)]
    chosen = [("loss", losses)] if losses else [(columns[0], [columns[0]])]  # no loss logged: the first metric
    drawn = set(chosen[0][1])
    for run in runs:
        if run.monitor and run.monitor in run.columns and run.monitor not in drawn:
            chosen.append((run.monitor, [run.monitor]))
            drawn.add(run.monitor)
    return chosen


def figure(runs: Sequence[RunHistory], metric: str | None = None) -> Any:
    """A matplotlib ``Figure`` of the runs' curves, one panel per entry of ``panels``, one line per run and metric.

    Each line's label is ``<run label> <metric>``, its x data the steps and
    its y data the values of the rows that hold the metric, as metrics.csv
    has them.
    """
    from matplotlib.figure import Figure

    chosen = panels(runs, metric)
    # fixed margins: a constrained layout doubles the drawing time (~0.2 s more at the end of every fit)
    width = 6.4 * len(chosen)  # inches; the margins below are in inches too: 0.85 left, 0.15 right
    fig = Figure(figsize=(width, 4.8))
    fig.subplots_adjust(left=0.85 / width, right=1 - 0.15 / width, bottom=0.1, top=0.93, wspace=0.25)
    axes = fig.subplots(1, len(chosen), squeeze=False)[0]
    for ax, (title, metrics) in zip(axes, chosen):
        # one run: a colour per quantity, its train and val lines alike (a GAN's loss terms apart)
        quantities = list(dict.fromkeys(SPLIT.sub("", name) for name in metrics))
        for number, run in enumerate(runs):
            for name in metrics:
                steps, values = run.series(name)
                colour = number if len(runs) > 1 else quantities.index(SPLIT.sub("", name))
                if steps:
                    ax.plot(steps, values, label=f"{run.label} {name}", color=f"C{colour % 10}", **_style(name))
        ax.set_title(title)
        ax.set_xlabel("step")
        ax.set_ylabel(title)
        ax.grid(alpha=0.3)
        if ax.lines:
            ax.legend(fontsize="small")
    return fig


def _style(metric: str) -> dict[str, Any]:
    if metric == BATCH_LOSS:
        return {"linewidth": 0.8, "alpha": 0.5}
    if metric.startswith("train/"):
        return {"linestyle": "--", "marker": "o", "markersize": 3}
    return {"linestyle": "-", "marker": "s", "markersize": 3}


def save(fig: Any, path: Path) -> None:
    """Write the figure atomically, in the format its suffix names (png, pdf or svg)."""
    suffix = Path(path).suffix.lower().lstrip(".")
    if suffix not in FORMATS:
        raise HistoryError(
            f"{path}: received the file name {Path(path).name!r}; expected one ending in {', '.join('.' + f for f in FORMATS)}"
        )
    data = io.BytesIO()
    fig.savefig(data, format=suffix, dpi=100)
    atomic_write(path, data.getvalue(), durable=False)  # drawn again from metrics.csv whenever needed


def main(argv: Sequence[str]) -> None:
    """The process LearningCurves starts when a fit ends: ``METRICS_CSV LABEL MONITOR METRIC OUTPUT`` ("" for None).

    A failure exits 1 with one line, ``<error class>: <message>``, the warning LearningCurves repeats.
    """
    history, label, monitor, metric, output = argv
    try:
        save(figure([read_history(Path(history), label, monitor or None)], metric or None), Path(output))
    except Exception as exc:
        raise SystemExit(f"{type(exc).__name__}: {exc}") from None
