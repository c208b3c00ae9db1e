"""``expresso report``'s page: one self-contained HTML file of a sweep's (or a folder of runs') results.

Self-contained so it can be mailed, attached to an issue or opened from a
cluster's scratch disk: the figures are PNG data URIs, the style is inline,
and there is no script and no link to fetch. Per group (groups.py): the
trials best first (status, objective, parameters), the learning curves,
the objective against each parameter, a parallel-coordinates view, and the
trials that did not complete with why (a failed run's error, where the
pruner stopped one).
"""

from __future__ import annotations

import base64
import html
import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ..runs.atomic import atomic_write
from . import figures
from .groups import Group, Trial, read_groups

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1300px; color: #222; padding: 0 1em; }
h1 { font-size: 1.6em; } h2 { border-bottom: 1px solid #ccc; padding-bottom: .2em; margin-top: 2em; }
table { border-collapse: collapse; font-size: .9em; margin: .5em 0 1em; }
th, td { border: 1px solid #ddd; padding: .3em .6em; text-align: left; }
th { background: #f3f3f3; } tr.best td { background: #e8f6e8; font-weight: 600; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.status-failed { color: #b00020; } .status-pruned { color: #a06000; }
.figures { display: flex; flex-wrap: wrap; gap: 1em; } img { max-width: 100%; border: 1px solid #eee; }
.meta { color: #666; font-size: .9em; }
"""


def write_report(path: Path | str, out: Path | str, metric: str | None = None) -> list[Group]:
    """Read the groups under ``path``, draw them and write the page to ``out`` atomically; the groups read."""
    groups = read_groups(path, metric)
    atomic_write(out, page(groups, Path(path)), durable=False)
    return groups


def page(groups: list[Group], path: Path) -> str:
    made = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    body = [
        f"<h1>expresso report: {_e(path)}</h1>",
        f'<p class="meta">{len(groups)} group(s), written {made} by <code>expresso report</code>.</p>',
    ]
    body += [section(group) for group in groups]
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>expresso report: {_e(path.name or path)}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n"
        + "\n".join(body)
        + "\n</body>\n</html>\n"
    )


def section(group: Group) -> str:
    counts = ", ".join(f"{n} {s}" for s, n in sorted(_counts(group).items()))
    objective = f"{group.metric} ({group.direction})" if group.metric else "none (pass --metric)"
    parts = [
        f"<section><h2>{_e(group.title)}</h2>",
        f'<p class="meta">{_e(group.path)}: {len(group.trials)} trial(s): {_e(counts)}. Objective: {_e(objective)}.</p>',
        "<h3>Trials, best first</h3>",
        table(group),
        "<h3>Learning curves</h3>",
        _figures([("learning curves", figures.curves(group))]) or "<p>No run logged a metric.</p>",
    ]
    if group.parameters and group.metric:
        parts += [
            f"<h3>{_e(group.metric)} vs each parameter</h3>",
            _figures([(f"{group.metric} vs {key}", figures.versus(group, key)) for key in group.parameters]),
            "<h3>Parallel coordinates</h3>",
            _figures([("parallel coordinates", figures.parallel(group))]),
        ]
    parts += ["<h3>Failed and pruned</h3>", unfinished(group), "</section>"]
    return "\n".join(parts)


def table(group: Group) -> str:
    keys = list(group.parameters)
    head = ["trial", "status", group.metric or "objective", *keys, "run folder"]
    rows = ["<table><thead><tr>" + "".join(f"<th>{_e(h)}</th>" for h in head) + "</tr></thead><tbody>"]
    ranked = group.ranked()
    for number, trial in enumerate(ranked):
        best = number == 0 and trial.objective is not None
        cells = [
            _e(trial.label),
            f'<span class="status-{_e(trial.status)}">{_e(trial.status)}</span>',
            "" if trial.objective is None else f"{trial.objective:.6g}",
        ]
        cells += [_e(_value(trial.params.get(k))) for k in keys]
        cells.append(_e(trial.run.folder.path.name) if trial.run is not None else "")
        classes = ["", "", ' class="num"'] + [""] * (len(keys) + 1)
        row = "".join(f"<td{c}>{cell}</td>" for c, cell in zip(classes, cells))
        rows.append(f'<tr class="best">{row}</tr>' if best else f"<tr>{row}</tr>")
    rows.append("</tbody></table>")
    return "\n".join(rows)


def unfinished(group: Group) -> str:
    """The trials that did not complete, with their status and why."""
    left = [t for t in group.trials if t.status != "completed"]
    if not left:
        return "<p>None: every trial completed.</p>"
    items = [
        f"<li><b>{_e(t.label)}</b> {_e(t.status)} ({_e(_params(t))}): {_e(t.note or 'no reason recorded')}</li>"
        for t in left
    ]
    return '<ul class="unfinished">\n' + "\n".join(items) + "\n</ul>"


def _figures(drawn: list[tuple[str, Any]]) -> str:
    images = [
        f'<img alt="{_e(alt)}" src="data:image/png;base64,{base64.b64encode(figures.png(fig)).decode("ascii")}">'
        for alt, fig in drawn
        if fig is not None
    ]
    return f'<div class="figures">{"".join(images)}</div>' if images else ""


def _counts(group: Group) -> dict[str, int]:
    counts: dict[str, int] = {}
    for trial in group.trials:
        counts[trial.status] = counts.get(trial.status, 0) + 1
    return counts


def _params(trial: Trial) -> str:
    return ", ".join(f"{k}={_value(v)}" for k, v in trial.params.items())


def _value(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.6g}"
    return value if isinstance(value, str) else json.dumps(value, default=str)


def _e(value: Any) -> str:
    return html.escape(str(value))
