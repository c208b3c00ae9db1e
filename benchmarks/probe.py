"""User callbacks that time a fit from inside expresso: FitTimer, so the CLI can be measured like the API; EpochPhases.

``expresso train`` runs in its own process; timing that process whole would
add start-up, config checking and the final test pass to the training time.
This probe, named in the benchmark configs as
``benchmarks/probe.py:FitTimer``, records instead:

- ``seconds``: FIT_START to FIT_END, including the wait for the last
  checkpoint to be on disk (the fit is not done before that);
- ``first_step_at``: the wall-clock time of the first optimizer step, which
  the benchmark subtracts from the moment it launched the process;
- the last epoch's ``val/acc``, the step count and torch's thread count.

It writes them to ``<run folder>/fit_timer.json`` at FIT_END. Its order
puts it first at every event, so FIT_START starts the clock before any
other callback runs; at FIT_END it waits for checkpoints, then stops it.

EpochPhases marks each epoch's phases the same way, for benchmarks/phases.py.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from expresso import Callback

# cases.PROBE_FILE names the same file: this module imports nothing from the
# benchmarks package, because expresso may load it by path under a private name.
FILE = "fit_timer.json"


class FitTimer(Callback):
    order = -1_000_000

    def __init__(self, run_dir: str | Path | None = None):
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self._start = 0.0
        self.first_step_at: float | None = None

    def on_fit_start(self, state) -> None:
        self._start = time.perf_counter()
        self.first_step_at = None

    def on_batch_end(self, state) -> None:
        if self.first_step_at is None:
            self.first_step_at = time.time()

    def on_fit_end(self, state) -> None:
        if state.wait_for_checkpoints is not None:
            state.wait_for_checkpoints()
        seconds = time.perf_counter() - self._start
        import torch

        record = {
            "seconds": seconds,
            "first_step_at": self.first_step_at,
            "val_acc": state.metrics.get("val/acc"),
            "steps": state.step,
            "threads": torch.get_num_threads(),
        }
        folder = self.run_dir or state.run_dir
        if folder is not None:
            Path(folder).mkdir(parents=True, exist_ok=True)
            (Path(folder) / FILE).write_text(json.dumps(record))


class EpochPhases(Callback):
    """Marks each epoch's phases from inside expresso (``benchmarks/phases.py`` reads them; the hand loop marks its own).

    First at every event, like FitTimer: ``epoch_start`` before any other
    callback's epoch start, ``val_start`` and ``val_end`` around the
    validation pass, ``fit_end`` once the last checkpoint is on disk. What
    lies between a ``val_end`` and the next ``epoch_start`` is every
    callback's epoch-end work (history, progress, the checkpoint's capture).
    """

    order = -1_000_000

    def __init__(self) -> None:
        self.marks: list[tuple[str, float]] = []

    def mark(self, name: str) -> None:
        self.marks.append((name, time.perf_counter()))

    def on_fit_start(self, state) -> None:
        self.mark("fit_start")

    def on_epoch_start(self, state) -> None:
        self.mark("epoch_start")

    def on_validation_start(self, state) -> None:
        self.mark("val_start")

    def on_validation_end(self, state) -> None:
        self.mark("val_end")

    def on_fit_end(self, state) -> None:
        if state.wait_for_checkpoints is not None:
            state.wait_for_checkpoints()
        self.mark("fit_end")
