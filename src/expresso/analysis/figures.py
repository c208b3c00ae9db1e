"""The report's figures, drawn with matplotlib's object API and returned as PNG bytes.

Per group (a sweep, or the runs outside sweeps): the learning curves of its
runs (runs/curves.py draws them, as ``expresso plot`` does), the objective
against each swept parameter (a log axis for a log-uniform one, a choice's
values as categories), and a parallel-coordinates view (one line per scored
trial across the parameters and the objective, each axis scaled to its own
range, coloured by the objective). matplotlib (the ``plots`` extra) is
imported only here and only when drawing; the arithmetic is plain Python,
so this layer stays numpy-free.
"""

from __future__ import annotations

import io
import json
import math
from typing import Any

from ..runs.curves import HistoryError, figure, read_history
from .groups import Group, Trial

LOG = "log-uniform"
CROWDED = 3  # runs past which only the last panel of the curves keeps its legend


def png(fig: Any) -> bytes:
    data = io.BytesIO()
    fig.savefig(data, format="png", dpi=80)
    return data.getvalue()


def curves(group: Group) -> Any | None:
    """The learning curves of the group's runs that logged rows (None: not one did)."""
    histories = []
    for trial in group.trials:
        if trial.run is None or not trial.run.folder.history.is_file():
            continue
        try:
            histories.append(read_history(trial.run.folder.history, trial.label, group.metric))
        except HistoryError:  # a run that logged no value yet: nothing to draw
            continue
    if not histories:
        return None
    fig = figure(histories)
    if len(histories) > CROWDED and len(fig.axes) > 1:
        # a sweep's dozen runs: one legend (the last panel's, a line per run) instead of one per panel and metric
        for ax in fig.axes[:-1]:
            ax.get_legend().remove()
            ax.set_title(
                f"{ax.get_title()} (colours: runs, as on the right; dashed: train, solid: val)", fontsize="small"
            )
    return fig


def versus(group: Group, key: str) -> Any:
    """The objective against one parameter: scored trials as dots, pruned ones as crosses at the value they reached."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(4.8, 3.6))
    fig.subplots_adjust(left=0.17, right=0.96, bottom=0.16, top=0.9)
    ax = fig.subplots()
    categories = _categories(group, key)
    for marker, colour, name, points in (
        ("o", "C0", "scored", [(t, t.objective) for t in group.trials]),
        ("x", "C3", "pruned (value reached)", [(t, t.reached) for t in group.trials if t.status == "pruned"]),
    ):
        shown: list[tuple[float, float]] = []
        for trial, y in points:
            x = _position(trial.params.get(key), categories)
            if x is not None and y is not None:
                shown.append((x, y))
        if shown:
            ax.scatter([x for x, _ in shown], [y for _, y in shown], marker=marker, color=colour, label=name)
    if categories is not None:
        ax.set_xticks(range(len(categories)), [_short(v) for v in categories])
    elif group.parameters.get(key) == LOG:
        ax.set_xscale("log")
    ax.set_xlabel(key)
    ax.set_ylabel(group.metric or "objective")
    ax.set_title(f"{group.metric or 'objective'} vs {key}", fontsize="medium")
    ax.grid(alpha=0.3)
    if len(ax.collections) > 1:
        ax.legend(fontsize="small")
    return fig


def parallel(group: Group) -> Any:
    """Parallel coordinates: an axis per parameter and one for the objective, a line per scored trial."""
    from matplotlib import colormaps
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize
    from matplotlib.figure import Figure

    keys = list(group.parameters)
    scored = [(t.objective, t) for t in group.trials if t.objective is not None]
    axes = [*keys, group.metric or "objective"]
    width = max(6.0, 1.6 * len(axes) + 1.5)
    fig = Figure(figsize=(width, 4.2))
    fig.subplots_adjust(left=0.8 / width, right=1 - 1.6 / width, bottom=0.12, top=0.86)
    ax = fig.subplots()
    values = [value for value, _ in scored]
    norm = Normalize(min(values), max(values)) if values else Normalize(0, 1)
    cmap = colormaps["viridis"]
    scales = [_scale(group, key, [t for _, t in scored]) for key in keys]
    scales.append(_scale_numbers(values, log=False))
    # the best drawn last, on top
    for value, trial in sorted(scored, key=lambda pair: pair[0], reverse=group.direction == "minimize"):
        ys = [scale[0](trial.params.get(key)) for key, scale in zip(keys, scales)] + [scales[-1][0](value)]
        ax.plot(range(len(axes)), ys, color=cmap(norm(value)), linewidth=1.5, alpha=0.9)
    for i, (_, ends) in enumerate(scales):
        ax.axvline(i, color="0.3", linewidth=1)
        ax.text(i, -0.06, ends[0], ha="center", va="top", fontsize="small")
        ax.text(i, 1.06, ends[1], ha="center", va="bottom", fontsize="small")
    ax.set_xticks(range(len(axes)), axes, fontsize="small")
    ax.xaxis.set_ticks_position("top")
    ax.tick_params(axis="x", pad=18, length=0)
    ax.set_yticks([])
    ax.set_xlim(-0.2, len(axes) - 0.8)
    ax.set_ylim(-0.15, 1.15)
    for side in ("left", "right", "bottom", "top"):
        ax.spines[side].set_visible(False)
    colourbar = fig.colorbar(ScalarMappable(norm=norm, cmap=cmap), ax=ax, fraction=0.04, pad=0.02)
    colourbar.set_label(group.metric or "objective")
    return fig


def _scale(group: Group, key: str, trials: list[Trial]) -> tuple[Any, tuple[str, str]]:
    """The function that maps the parameter's values onto [0, 1], and the labels of the axis's two ends."""
    categories = _categories(group, key)
    if categories is not None:
        span = max(len(categories) - 1, 1)
        ends = (_short(categories[0]), _short(categories[-1]))
        return (lambda v: (_position(v, categories) or 0) / span if len(categories) > 1 else 0.5), ends
    numbers = [v for t in trials if isinstance(v := t.params.get(key), (int, float)) and not isinstance(v, bool)]
    return _scale_numbers(numbers, log=group.parameters.get(key) == LOG and all(v > 0 for v in numbers))


def _scale_numbers(numbers: list[float], log: bool) -> tuple[Any, tuple[str, str]]:
    shape = math.log if log else float
    low, high = (min(numbers), max(numbers)) if numbers else (0.0, 1.0)
    lo, hi = shape(low), shape(high)

    def scaled(value: Any) -> float:
        if not isinstance(value, (int, float)) or (log and value <= 0):
            return 0.5
        return 0.5 if hi == lo else (shape(value) - lo) / (hi - lo)

    return scaled, (f"{low:.3g}", f"{high:.3g}")


def _categories(group: Group, key: str) -> list | None:
    """A parameter's values in order when they are not all numbers (lists, strings, booleans), else None."""
    values = [t.params.get(key) for t in group.trials if key in t.params]
    numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)
    if numeric:
        return None
    unique: dict[str, Any] = {}
    for value in values:
        unique.setdefault(json.dumps(value, sort_keys=True, default=str), value)
    return [unique[k] for k in sorted(unique)]


def _position(value: Any, categories: list | None) -> float | None:
    if categories is None:
        return float(value) if isinstance(value, (int, float)) else None
    text = json.dumps(value, sort_keys=True, default=str)
    found = [i for i, c in enumerate(categories) if json.dumps(c, sort_keys=True, default=str) == text]
    return float(found[0]) if found else None


def _short(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= 18 else text[:17] + "…"
