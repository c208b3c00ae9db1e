"""Where expresso's fit time goes: warm fits in one process, the defaults taken away one at a time.

The training cases time cold fits, one process each, and their rounds vary
by tens of percent on a busy machine: a row without checkpoints, measured
in other processes at other moments, cannot say what the checkpoints cost.
Here every variant fits in this process, after a warm-up fit of each, in a
fixed rotation, so machine drift hits them alike, and each variant drops
one more default from expresso's fit of the case's config:

- ``expresso``: everything on (the ``expresso API`` row's fit);
- ``no checkpoints``: without the Checkpoint callback;
- ``no checkpoints, no progress``: without Progress too;
- ``no checkpoints, no progress, no metrics``: ``metrics: {}`` too (the
  loss is still averaged per epoch, and validated);

against the training cases' own hand loop (``hand_loop.train``). What is
left in the last row is the engine's own work per step (the graph, the
loss average, the events); the difference between two rows is what the
default dropped costs a warm fit. Cold costs (first calls, imports inside
the fit) are the training cases' business: they are not in these rows.
"""

from __future__ import annotations

import logging
import statistics
import tempfile
from pathlib import Path

from .cases import CASES, Case

VARIANTS = {  # label -> (callbacks dropped, overrides)
    "expresso": ((), ()),
    "no checkpoints": (("Checkpoint",), ()),
    "no checkpoints, no progress": (("Checkpoint", "Progress"), ()),
    "no checkpoints, no progress, no metrics": (
        ("Checkpoint", "Progress"),
        ("metrics={}", "trainer.monitor=val/loss", "trainer.mode=min"),
    ),
}
HAND = "hand loop"
CASE_NAMES = ("mlp", "cnn")


def run(rounds: int, scratch: Path) -> dict:
    """{case: {variant: [fit seconds per round]}}, the hand loop first; prints a line per case."""
    import torch

    torch.set_num_threads(1)
    logging.getLogger("expresso").setLevel(logging.WARNING)  # progress lines would time the terminal
    found: dict = {}
    with tempfile.TemporaryDirectory(dir=scratch) as tmp:
        for name in CASE_NAMES:
            labels = [HAND, *VARIANTS]
            for label in labels:  # warm-up: first calls, lazy imports, allocator
                _fit(CASES[name], label, Path(tmp))
            times: dict[str, list[float]] = {label: [] for label in labels}
            for _ in range(rounds):
                for label in labels:
                    times[label].append(_fit(CASES[name], label, Path(tmp)))
            found[name] = times
            print(f"{name}: " + ", ".join(f"{label} {statistics.median(t):.3f} s" for label, t in times.items()))
    return found


def _fit(case: Case, label: str, workdir: Path) -> float:
    """One fit of ``case`` by the variant ``label`` (or the hand loop), its seconds."""
    from . import expresso_api, hand_loop

    if label == HAND:
        return hand_loop.train(case)["seconds"]
    dropped, overrides = VARIANTS[label]
    return expresso_api.train(case, workdir, extra=list(overrides), without=dropped)["seconds"]


def section(result: dict) -> list[str]:
    """The report's table: each variant's warm fit, and its ratio paired per round with the hand loop's."""
    from .report import _s, _table
    from .summary import paired, stats

    lines = [
        "## Where the fit time goes: warm fits, one default dropped at a time (benchmarks/attribution.py)",
        "",
        "Every variant fits the case in one process after a warm-up fit, in a fixed rotation; ratios are paired per round "
        "with the hand loop. Each row drops one more of expresso's defaults; what the last row still spends over the hand "
        "loop is the engine's own per-step work.",
        "",
    ]
    rows = []
    for name, times in result.items():
        hand = times[HAND]
        for label, seconds in times.items():
            ratio = "1x" if label == HAND else _s(paired(seconds, hand, lambda mine, base: mine / base), 3, "x")
            rows.append([CASES[name].name, label, _s(stats(seconds)), ratio])
    return lines + _table(["case", "variant", "warm fit s, median (min-max)", "ratio to the hand loop"], rows) + [""]
