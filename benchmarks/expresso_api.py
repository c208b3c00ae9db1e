"""expresso through its Python API: ``build_trainer`` from the case's config file, then ``fit()``.

Everything expresso turns on by default stays on (model summary, progress,
metrics.csv history, last/best checkpoints each epoch, the configured
metric); the run folder goes to the benchmark's scratch folder. The clock
covers ``trainer.fit()`` alone, which ends when the last checkpoint is on
disk. (The CLI runs as its own process, timed by ``probe.py``: see
``training_cases.py``.) After the clock, ``train`` waits for curves.png,
which LearningCurves draws on a thread once the fit ends: the next fit in
the process (the warm one, attribution.py's) would otherwise share the CPU
with it.

``without`` drops default callbacks by class name (``("Checkpoint",)``: the
one default a user cannot turn off from a config): the "no checkpoints" row
and attribution.py measure what each costs. ``also`` adds callbacks
(phases.py's EpochPhases).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from .cases import PROBE_FILE, ROOT, Case


def overrides(case: Case, num_workers: int | None = None, epochs: int | None = None) -> list[str]:
    """Command-line overrides for a variant of the case (none for the case as configured)."""
    extra = []
    if num_workers is not None:
        extra.append(f"dataloader.num_workers={num_workers}")
    if epochs is not None:
        extra.append(f"trainer.max_epochs={epochs}")
    return extra


def train(
    case: Case,
    workdir: Path,
    num_workers: int | None = None,
    epochs: int | None = None,
    extra: list[str] | None = None,
    without: tuple[str, ...] = (),
    also: tuple = (),
) -> dict:
    """One fit; ``extra`` overrides go on top of the case's (the tracker case's ``loggers=[...]``)."""
    from expresso import load_config
    from expresso.assembly import build_trainer

    config = load_config(ROOT / case.config, [*overrides(case, num_workers, epochs), *(extra or [])], check=True)
    run_dir = Path(workdir) / f"run-{time.monotonic_ns()}"
    trainer = build_trainer(config, run_dir)
    if without or also:
        kept = [callback for callback in trainer.callbacks.callbacks if type(callback).__name__ not in without]
        trainer.callbacks = type(trainer.callbacks)([*kept, *also])
    start = time.perf_counter()
    metrics = trainer.fit()
    seconds = time.perf_counter() - start
    wait_for_curves(trainer)
    probe = json.loads((run_dir / PROBE_FILE).read_text())
    from . import workload

    # How expresso fetched the training batches: the engine may gather a whole batch from datasets that allow it.
    fetch = "one gather per batch" if trainer.loader("train").batch_size is None else "per sample + collate"
    return workload.fit_result(
        seconds,
        probe["first_step_at"],
        metrics.get("val/acc", float("nan")),
        trainer.state.step,
        probe_seconds=probe["seconds"],
        fetch=fetch,
    )


def wait_for_curves(trainer) -> None:
    """Return once curves.png is drawn: its drawing process, beside the next fit timed, would slow that fit."""
    from expresso.callbacks import LearningCurves

    for callback in trainer.callbacks.callbacks:
        if isinstance(callback, LearningCurves):
            callback.wait()
