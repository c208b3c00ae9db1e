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
from typing import Any

from ..engine.state import State
from .metric_watcher import MetricWatcher

log = logging.getLogger("expresso")


class EarlyStopping(MetricWatcher):
    """Ends the stage once the monitored metric has stopped improving, before training overfits or wastes time.

    At every epoch end that measured the metric, a value better than the
    best so far by more than ``min_delta`` resets the count; otherwise the
    count grows, and at ``patience`` the stage ends (``state.request_stop``),
    after the epoch's validation, history and checkpoint. Without stages, the
    stage is the whole fit; with several, the count starts over when the next
    stage begins (it trains something else).

    Args:
        monitor: the metric watched (``"val/loss"``, ``"val/acc"``).
        mode: ``"min"`` when lower values are better, ``"max"`` when higher are.
        patience: how many checks in a row without improvement end the stage
            (0 ends it at the first one, as 1 does).
        min_delta: how much a value must beat the best by to count (>= 0).
    """

    order = 60  # after the progress line, so "stopping after epoch N" follows the line of epoch N
    phases = ("fit",)
    stop_key: str | None = None  # who asks to stop (state.stops): a stage's own sets "stages.N.early_stopping"

    def __init__(self, monitor: str = "val/loss", mode: str = "min", patience: int = 3, min_delta: float = 0.0):
        super().__init__(monitor, mode, min_delta)
        if isinstance(patience, bool) or not isinstance(patience, int) or patience < 0:
            raise ValueError(
                f"Invalid value for argument `patience`. Received: patience={patience!r}; expected an integer >= 0"
            )
        self.patience = patience
        self.wait = 0  # checks in a row without improvement

    def on_stage_start(self, state: State) -> None:
        # A new stage trains something else: patience starts over (a resumed stage keeps its count).
        if state.stage > 0 and state.stage_epoch == 0 and state.batch_index == 0:
            self.best, self.best_epoch, self.wait = None, None, 0

    def on_epoch_end(self, state: State) -> None:
        value = self.read(state)
        if value is None:
            return
        if self.better(value, self.best):
            self.best, self.best_epoch, self.wait = value, state.epoch + 1, 0
            return
        self.wait += 1
        if self._exhausted():
            best = "no finite value yet" if self.best is None else f"best {self.best:.6g} at epoch {self.best_epoch}"
            reason = f"{self.monitor} did not improve by more than {self.min_delta:g} in {self.wait} check(s) ({best}, patience {self.patience})"
            state.request_stop(self.stop_key or self.state_key, reason)
            log.info("EarlyStopping: %s; last %.6g; stopping after epoch %d", reason, value, state.epoch + 1)

    def _exhausted(self) -> bool:
        # patience 0 stops at the first check without improvement.
        return self.wait >= max(self.patience, 1)

    def still_stops(self, state: State) -> bool:
        return self._exhausted()

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "wait": self.wait}

    def load_counts(self, state: dict[str, Any]) -> None:
        super().load_counts(state)
        self.wait = state["wait"]
