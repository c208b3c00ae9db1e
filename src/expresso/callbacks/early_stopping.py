"""Early stopping: end the fit once the monitored metric has stopped improving.

Training past the point where validation stops improving costs time and
usually overfits. ``EarlyStopping`` checks the monitored metric at every
epoch end that measured it (``val/`` metrics: epochs that validated, so
``patience`` counts validation checks) and asks ``state.request_stop`` after
``patience`` checks in a row without an improvement larger than
``min_delta``. Its best value and wait count travel in the checkpoint, so a
resumed run stops at the epoch the uninterrupted one would have; a run it
ended, resumed with a larger ``patience`` (or without it), trains on.
Epochs in its messages and ``best_epoch`` count from 1.
"""

from __future__ import annotations

import logging
import math
from typing import Any

from ..engine.callback import Callback
from ..engine.state import State
from ._monitor import Monitor, watches_the_same

log = logging.getLogger("expresso")


class EarlyStopping(Callback):
    order = 60  # after the progress line, so "stopping after epoch N" follows the line of epoch N
    phases = ("fit",)
    stop_key: str | None = None  # who asks to stop (state.stops): a stage's own sets "stages.N.early_stopping"

    def __init__(self, monitor: str = "val/loss", mode: str = "min", patience: int = 3, min_delta: float = 0.0):
        if mode not in ("min", "max"):
            raise ValueError(f"Invalid value for argument `mode`. Received: mode={mode!r}; expected 'min' or 'max'")
        if isinstance(patience, bool) or not isinstance(patience, int) or patience < 0:
            raise ValueError(
                f"Invalid value for argument `patience`. Received: patience={patience!r}; expected an integer >= 0"
            )
        if not (isinstance(min_delta, (int, float)) and min_delta >= 0):
            raise ValueError(
                f"Invalid value for argument `min_delta`. Received: min_delta={min_delta!r}; expected a number >= 0"
            )
        self.monitor, self.mode, self.patience, self.min_delta = monitor, mode, patience, float(min_delta)
        self._metric = Monitor(monitor, "EarlyStopping")
        self.best: float | None = None
        self.best_epoch: int | None = None  # counted from 1
        self.wait = 0  # checks in a row without improvement

    def on_stage_start(self, state: State) -> None:
        # A new stage trains something else: patience starts over (a resumed stage keeps its count).
        if state.stage > 0 and state.stage_epoch == 0 and state.batch_index == 0:
            self.best, self.best_epoch, self.wait = None, None, 0

    def on_epoch_start(self, state: State) -> None:
        self._metric.epoch_started()

    def on_validation_end(self, state: State) -> None:
        self._metric.validation_ended()

    def on_epoch_end(self, state: State) -> None:
        value = self._metric.read(state)
        if value is None:
            return
        if self._improved(value):
            self.best, self.best_epoch, self.wait = value, state.epoch + 1, 0
            return
        self.wait += 1
        if self._exhausted():
            best = "no finite value yet" if self.best is None else f"best {self.best:.6g} at epoch {self.best_epoch}"
            reason = f"{self.monitor} did not improve by more than {self.min_delta:g} in {self.wait} check(s) ({best}, patience {self.patience})"
            state.request_stop(self.stop_key or self.state_key, reason)
            log.info("EarlyStopping: %s; last %.6g; stopping after epoch %d", reason, value, state.epoch + 1)

    def on_fit_end(self, state: State) -> None:
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

    def still_stops(self, state: State) -> bool:
        return self._exhausted()

    def state_dict(self) -> dict[str, Any]:
        return {
            "best": self.best,
            "best_epoch": self.best_epoch,
            "wait": self.wait,
            "monitor": self.monitor,
            "mode": self.mode,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if not watches_the_same("EarlyStopping", state, self.monitor, self.mode):
            return
        self.best, self.best_epoch, self.wait = state["best"], state["best_epoch"], state["wait"]
