"""expresso through its Python API: ``build_trainer`` from the case's config file, then ``fit()``.

Everything expresso turns on by default stays on (model summary, progress,
metrics.csv history, last/best checkpoints each epoch, the configured
metric); the run folder goes to the benchmark's scratch folder. The clock
covers ``trainer.fit()`` alone, which ends when the last checkpoint is on
disk. (The CLI runs as its own process, timed by ``probe.py``: see
``training_cases.py``.)

``checkpoints=False`` drops the default Checkpoint callback, the one default
a user cannot turn off from a config: the row it gives measures what the
per-epoch checkpoints cost, the cause the report names for the MLP's miss.
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
    checkpoints: bool = True,
) -> dict:
    """One fit; ``extra`` overrides go on top of the case's (the tracker case's ``loggers=[...]``)."""
    from expresso import load_config
    from expresso.assembly import build_trainer

    config = load_config(ROOT / case.config, [*overrides(case, num_workers, epochs), *(extra or [])], check=True)
    run_dir = Path(workdir) / f"run-{time.monotonic_ns()}"
    trainer = build_trainer(config, run_dir)
    if not checkpoints:
        from expresso.callbacks import Checkpoint

        kept = [callback for callback in trainer.callbacks.callbacks if not isinstance(callback, Checkpoint)]
        trainer.callbacks = type(trainer.callbacks)(kept)
    start = time.perf_counter()
    metrics = trainer.fit()
    seconds = time.perf_counter() - start
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
