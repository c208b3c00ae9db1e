"""RecordSummary: keeps a run's run.json current while it trains (the record itself is expresso.runs.record)."""

from __future__ import annotations

import time

from ..engine.callback import Callback
from ..engine.state import State
from ..runs.record import HEARTBEAT_SECONDS, RunRecord, now


class RecordSummary(Callback):
    """Keeps run.json's summary (epochs done, latest and best monitored value) and heartbeat current."""

    rank_zero_only = True  # it writes: rank 0 alone runs it (engine/distributed.py)

    def __init__(self, record: RunRecord, monitor: str, mode: str):
        self.record, self.monitor, self.mode = record, monitor, mode
        self._next_beat = 0.0

    def on_batch_end(self, state: State) -> None:
        moment = time.monotonic()
        if moment >= self._next_beat:  # one clock read per step; a write every HEARTBEAT_SECONDS
            self._next_beat = moment + HEARTBEAT_SECONDS
            self.record.update(heartbeat=now())

    def on_epoch_checkpoint(self, state: State) -> None:  # the epoch's final metrics
        summary = dict(self.record.data.get("summary") or {})
        value = state.metrics.get(self.monitor)
        best = summary.get("best")
        if value is not None and (best is None or (value < best if self.mode == "min" else value > best)):
            summary["best"], summary["best_epoch"] = value, state.epoch + 1  # epochs count from 1 in every record
        summary.update(
            epochs=state.epoch + 1, step=state.step, monitor=self.monitor, mode=self.mode, metrics=dict(state.metrics)
        )
        self.record.update(summary=summary, heartbeat=now())
