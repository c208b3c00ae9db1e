"""The logger interface: what a tracker receives from a run, and when.

A ``Logger`` is a callback that runs after every other one (``order`` is
infinite, as the history's), so an epoch's metrics reach it complete: the
trainer's, and whatever any callback wrote into ``state.metrics`` at that
epoch's end. A subclass implements the three methods; the events are wired
here once.
"""

from __future__ import annotations

import math
from typing import Any

from ..engine.callback import Callback


class Logger(Callback):
    order = math.inf  # after every callback that writes metrics
    phases = ("fit",)

    def log_hyperparams(self, params: dict[str, Any]) -> None:
        """The run's resolved config, once per fit (a resumed run sends the settings it continues with)."""

    def log_metrics(self, metrics: dict[str, float], step: int, epoch: int) -> None:
        """One epoch's values (``train/loss``, ``val/acc``, ``lr``...); ``epoch`` counts from 1, ``step`` is optimizer steps so far."""

    def finish(self, status: str) -> None:
        """How the fit ended: ``completed``, ``interrupted`` or ``failed``."""

    def on_fit_start(self, state) -> None:
        self.log_hyperparams(dict(state.config or {}))

    def on_epoch_end(self, state) -> None:
        self.log_metrics(dict(state.metrics), step=state.step, epoch=state.epoch + 1)

    def on_fit_end(self, state) -> None:
        self.finish("completed")

    def on_exception(self, state) -> None:
        error = state.extra.get("exception")
        status = getattr(error, "run_status", "interrupted" if isinstance(error, KeyboardInterrupt) else "failed")
        self.finish(status)
