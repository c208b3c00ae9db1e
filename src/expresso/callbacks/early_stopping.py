"""Early stopping: end the fit once the monitored metric has stopped improving.

Training past the point where validation stops improving costs time and
usually overfits. ``EarlyStopping`` checks the monitored metric at every
epoch end that measured it (``val/`` metrics: epochs that validated, so
``patience`` counts validation checks) and sets ``state.should_stop`` after
``patience`` checks in a row without an improvement larger than
``min_delta``. Its best value and wait count travel in the checkpoint, so a
resumed run stops at the epoch the uninterrupted one would have.
"""

from __future__ import annotations

import logging
import math
from typing import Any

from ..engine.callback import Callback
from ._monitor import Monitor

log = logging.getLogger("expresso")


class EarlyStopping(Callback):
    order = 10  # after the LR schedule, before the checkpoint that records the decision
    phases = ("fit",)

    def __init__(self, monitor: str = "val/loss", mode: str = "min", patience: int = 3, min_delta: float = 0.0):
        if mode not in ("min", "max"):
            raise ValueError(f"Invalid value for argument `mode`. Received: mode={mode!r}; expected 'min' or 'max'")
        if isinstance(patience, bool) or not isinstance(patience, int) or patience < 0:
            raise ValueError(f"Invalid value for argument `patience`. Received: patience={patience!r}; expected an integer >= 0")
        if not (isinstance(min_delta, (int, float)) and min_delta >= 0):
            raise ValueError(f"Invalid value for argument `min_delta`. Received: min_delta={min_delta!r}; expected a number >= 0")
        self.monitor, self.mode, self.patience, self.min_delta = monitor, mode, patience, float(min_delta)
        self._metric = Monitor(monitor, "EarlyStopping")
        self.best: float | None = None
        self.best_epoch: int | None = None
        self.wait = 0  # checks in a row without improvement

    def on_fit_start(self, state) -> None:
        # A run resumed from the checkpoint of the epoch that stopped it stops again.
        if self._exhausted():
            state.should_stop = True
            log.info("EarlyStopping: %s already stopped this run (no improvement in %d checks); nothing to train", self.monitor, self.wait)

    def on_stage_start(self, state) -> None:
        # A new stage trains something else: patience starts over (a resumed stage keeps its count).
        if state.stage > 0 and state.stage_epoch == 0 and state.batch_index == 0:
            self.best, self.best_epoch, self.wait = None, None, 0

    def on_epoch_start(self, state) -> None:
        self._metric.epoch_started()

    def on_validation_end(self, state) -> None:
        self._metric.validation_ended()

    def on_epoch_end(self, state) -> None:
        value = self._metric.read(state)
        if value is None:
            return
        if self._improved(value):
            self.best, self.best_epoch, self.wait = value, state.epoch, 0
            return
        self.wait += 1
        if self._exhausted():
            state.should_stop = True
            best = "no finite value yet" if self.best is None else f"best {self.best:.6g} at epoch {self.best_epoch + 1}"
            log.info(
                "EarlyStopping: %s has not improved by more than %g in %d check(s) (%s, now %.6g); stopping after epoch %d",
                self.monitor, self.min_delta, self.wait, best, value, state.epoch + 1,
            )

    def on_fit_end(self, state) -> None:
        self._metric.finished()

    def _improved(self, value: float) -> bool:
        if math.isnan(value):  # a NaN is never an improvement
            return False
        if self.best is None:
            return True
        if self.mode == "min":
            return value < self.best - self.min_delta
        return value > self.best + self.min_delta

    def _exhausted(self) -> bool:
        # patience 0 stops at the first check without improvement.
        return self.wait >= max(self.patience, 1)

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best, "best_epoch": self.best_epoch, "wait": self.wait}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best, self.best_epoch, self.wait = state["best"], state["best_epoch"], state["wait"]
