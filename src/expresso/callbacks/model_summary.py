"""Model summary: what is being trained, logged once at fit start.

A table per model of its direct children (name, type, parameters, trainable
parameters) and the totals, so a frozen backbone or a head far larger than
intended shows in the log before the first epoch, not after the last.
The same text goes to every logger as ``model_summary`` (``state.add_text``).
Totals count each parameter once (``Module.parameters`` skips shared ones);
a parameter shared by two children appears in both rows.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from torch import nn
from torch.nn.parameter import UninitializedParameter

from ..engine.callback import Callback
from ..engine.state import State

log = logging.getLogger("expresso")

HEADER = ("name", "type", "params", "trainable")


@dataclass(frozen=True)
class Summary:
    """The parameter counts of one model: a row per direct child, and the totals (``summarize`` makes it).

    Kept apart from its text (``render``) so the counts can be checked and
    shown elsewhere than in a log.
    """

    rows: list[tuple[str, str, int, int]]  # (name, type, parameters, trainable)
    total: int
    trainable: int

    @property
    def frozen(self) -> int:
        return self.total - self.trainable


def summarize(model: nn.Module) -> Summary:
    """Counts for each direct child of ``model`` (and its own parameters), and the totals."""
    rows = [(name, type(child).__name__, *_count(child.parameters())) for name, child in model.named_children()]
    own = list(model.parameters(recurse=False))
    if own:
        rows.insert(0, ("(own)", type(model).__name__, *_count(own)))
    return Summary(rows, *_count(model.parameters()))


def _count(parameters) -> tuple[int, int]:
    total = trainable = 0
    for p in parameters:
        if isinstance(p, UninitializedParameter):  # a lazy module before its first forward
            continue
        total += p.numel()
        trainable += p.numel() if p.requires_grad else 0
    return total, trainable


def render(name: str, model: nn.Module, summary: Summary) -> str:
    """The summary as aligned text lines (log files and terminals alike)."""
    cells = [HEADER, *[(n, t, f"{p:,}", f"{tr:,}") for n, t, p, tr in summary.rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(4)]
    lines = [f"model {name!r} ({type(model).__name__})"]
    for row in cells:
        lines.append(
            "  " + "  ".join(cell.ljust(w) if i < 2 else cell.rjust(w) for i, (cell, w) in enumerate(zip(row, widths)))
        )
    lines.append(f"  total {summary.total:,} parameters: {summary.trainable:,} trainable, {summary.frozen:,} frozen")
    if any(isinstance(p, UninitializedParameter) for p in model.parameters()):
        lines.append("  (lazy modules not yet initialized are not counted)")
    return "\n".join(lines)


class ModelSummary(Callback):
    """Logs a parameter table of every model at fit start, so a frozen part or a wrong size shows before training.

    One table per model (``render``): its direct children with their types,
    parameter counts and trainable counts, then the totals. It takes no
    arguments. The tables, one text, reach the loggers as ``model_summary``.
    """

    rank_zero_only = True  # it writes: rank 0 alone runs it (engine/distributed.py)

    order = -40  # logged before the progress bar takes the terminal
    phases = ("fit",)

    def on_fit_start(self, state: State) -> None:
        tables = [render(name, model, summarize(model)) for name, model in state.models.items()]
        for table in tables:
            log.info("%s", table)
        if tables:
            state.add_text("model_summary", "\n\n".join(tables))
