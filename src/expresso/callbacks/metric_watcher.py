"""MetricWatcher: the base of callbacks that act on one monitored metric (Checkpoint, EarlyStopping).

Watching a metric has rules that every such callback must apply the same way,
so they live here once:

- **Reading.** ``state.metrics`` keeps the latest value of every key, so on
  an epoch that did not validate (``val_every_n_epochs`` > 1) ``val/loss``
  still holds the previous validation's value. Counting it again would make
  patience run out on epochs that measured nothing; a ``val/`` metric is
  therefore read only on epochs whose validation pass ran. A name that no
  metric has fails loudly, with the closest name; a name the run knows but
  this stage does not measure (another pipeline's) reads as nothing. A fit
  with no validation at all never reads a ``val/`` metric: the fit's end
  warns rather than let that pass in silence (a fit that trained no epoch,
  e.g. a resume with nothing left, has nothing to warn about).
- **Comparing.** ``better(value, than)``: by ``mode``, by more than
  ``min_delta``; a NaN is never better.
- **Resuming.** The best value so far travels in the checkpoint with the
  monitor and mode it was counted on; a resume that changed either starts
  counting afresh, and says so.
"""

from __future__ import annotations

import difflib
import logging
import math
from collections.abc import Iterable
from typing import Any

from ..engine.callback import Callback
from ..engine.state import State

log = logging.getLogger("expresso")


class MetricWatcher(Callback):
    """A callback that reads one metric at epoch ends and keeps its best value; subclass it to act on that value.

    A subclass reads the epoch's value with ``read(state)`` (None: not
    measured this epoch), compares it with ``better(value, self.best)``, and
    extends ``state_dict``/``load_counts`` with what else it counts. If it
    overrides ``on_epoch_start``, ``on_validation_end`` or ``on_fit_end``, it
    calls ``super()``'s: they keep the reading rules (the module docstring).

    Args:
        monitor: the metric's name in ``state.metrics`` (``"val/loss"``,
            ``"train/acc"``); None watches nothing (``read`` returns None).
        mode: ``"min"`` when lower values are better, ``"max"`` when higher are.
        min_delta: how much a value must beat another by to be better (>= 0).
    """

    def __init__(self, monitor: str | None, mode: str = "min", min_delta: float = 0.0):
        if mode not in ("min", "max"):
            raise ValueError(f"Invalid value for argument `mode`. Received: mode={mode!r}; expected 'min' or 'max'")
        if not (isinstance(min_delta, (int, float)) and min_delta >= 0):
            raise ValueError(
                f"Invalid value for argument `min_delta`. Received: min_delta={min_delta!r}; expected a number >= 0"
            )
        self.monitor, self.mode, self.min_delta = monitor, mode, float(min_delta)
        self.best: float | None = None
        self.best_epoch: int | None = None  # counted from 1
        self._validated = False  # this epoch's validation ran: its val/ values are fresh
        self._read_once = False
        self._epochs = 0  # epochs started in this fit

    @property
    def watcher_name(self) -> str:
        """Who watches, as messages name it."""
        return type(self).__name__

    def on_epoch_start(self, state: State) -> None:
        self._validated = False
        self._epochs += 1

    def on_validation_end(self, state: State) -> None:
        self._validated = True

    def on_fit_end(self, state: State) -> None:
        if self.monitor and self._epochs and not self._read_once and self.monitor.startswith("val/"):
            log.warning(
                "%s never read %r: no validation ran in this fit (no val_data?)", self.watcher_name, self.monitor
            )

    def read(self, state: State) -> float | None:
        """The monitored value measured this epoch, or None when this epoch measured none."""
        if self.monitor is None or (self.monitor.startswith("val/") and not self._validated):
            return None
        if self.monitor not in state.metrics:
            if self.monitor in state.metric_names:
                return None  # a pipeline this stage does not run reports it
            raise KeyError(missing_message(self.watcher_name, self.monitor, state.metrics))
        self._read_once = True
        return float(state.metrics[self.monitor])

    def better(self, value: float, than: float | None) -> bool:
        """Whether ``value`` beats ``than`` (None: nothing yet) by ``mode``, by more than ``min_delta``; NaN never does."""
        if math.isnan(value):
            return False
        if than is None:
            return True
        if self.mode == "min":
            return value < than - self.min_delta
        return value > than + self.min_delta

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best, "best_epoch": self.best_epoch, "monitor": self.monitor, "mode": self.mode}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if self.watches_the_same(state):
            self.load_counts(state)

    def load_counts(self, state: dict[str, Any]) -> None:
        """Restore what was counted (called only when ``state`` was counted on this monitor and mode)."""
        self.best, self.best_epoch = state["best"], state["best_epoch"]

    def watches_the_same(self, saved: dict[str, Any]) -> bool:
        """Whether a saved state was counted on this monitor and mode; a resume that changed them starts counting afresh (and says so)."""
        # States saved before monitors were recorded count as the same.
        before = (saved.get("monitor", self.monitor), saved.get("mode", self.mode))
        if before == (self.monitor, self.mode):
            return True
        log.info(
            "%s: now watching %s (%s), not %s (%s) as before the resume: counting afresh",
            self.watcher_name,
            self.monitor,
            self.mode,
            *before,
        )
        return False


def missing_message(owner: str, key: str, metrics: Iterable[str]) -> str:
    """The error for a monitor that names no metric: the names there are, and the closest one."""
    close = difflib.get_close_matches(key, list(metrics), n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return f"{owner} monitors {key!r}, which is not among the metrics {sorted(metrics)}{hint}"
