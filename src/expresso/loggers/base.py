"""The logger interface: what a tracker receives from a run, and when.

A ``Logger`` is a callback that sends an epoch's metrics at
``EPOCH_CHECKPOINT``, after every ``EPOCH_END`` handler, so they reach it
complete: the trainer's, and whatever any callback wrote into
``state.metrics`` at that epoch's end. A subclass implements the three
methods; the events are wired here once.
"""

from __future__ import annotations

from typing import Any

from ..engine.callback import Callback
from ..engine.state import State


class Logger(Callback):
    phases = ("fit",)

    def log_hyperparams(self, params: dict[str, Any]) -> None:
        """The run's resolved config, once per fit (a resumed run sends the settings it continues with)."""

    def log_metrics(self, metrics: dict[str, float], step: int, epoch: int) -> None:
        """One epoch's values (``train/loss``, ``val/acc``, ``lr``...); ``epoch`` counts from 1, ``step`` is optimizer steps so far."""

    def finish(self, status: str) -> None:
        """How the fit ended: ``completed``, ``interrupted`` or ``failed``."""

    def on_fit_start(self, state: State) -> None:
        self.log_hyperparams(dict(state.config or {}))

    def on_epoch_checkpoint(self, state: State) -> None:
        self.log_metrics(dict(state.metrics), step=state.step, epoch=state.epoch + 1)

    def on_fit_end(self, state: State) -> None:
        self.finish("completed")

    def on_exception(self, state: State) -> None:
        error = state.extra.get("exception")
        status = getattr(error, "run_status", "interrupted" if isinstance(error, KeyboardInterrupt) else "failed")
        self.finish(status)
