"""Progress: what the user watches while a fit runs.

On a terminal, a rich progress bar with the epoch, speed, ETA and the live
batch loss; elsewhere (a log file, CI, a notebook's captured output), plain
lines through the ``expresso`` logger: one per epoch with every value in
``state.metrics``, and optionally one every N steps. Epochs are counted from
1 here ("epoch 3/10"), as a person counts them.

Reading the batch loss is a host sync, so the bar reads it at most
``refresh_per_second`` times a second, by wall time. Plain lines without
``plain_every_n_steps`` cost nothing per batch: ``listens`` tells the
dispatcher to leave this callback out of the batch events (with it, to call
it every N steps only).
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Any

from ..engine.callback import Callback, Every
from ..engine.events import Event
from ..engine.state import State

log = logging.getLogger("expresso")


class Progress(Callback):
    """Shows the fit as it runs: a live bar on a terminal, plain log lines elsewhere.

    On a terminal, a bar with the epoch, its speed, ETA and the batch loss;
    in every case, a log line per epoch with every value in
    ``state.metrics``; without a terminal (a log file, CI) and with
    ``plain_every_n_steps``, a line every N steps with the batch loss.

    Args:
        refresh_per_second: how often the bar reads the batch loss at most (> 0).
        plain_every_n_steps: without a terminal, also log a line every N steps (None: per epoch only).
        console: a ``rich.console.Console`` to draw on (None: standard error).
    """

    rank_zero_only = True  # it writes: rank 0 alone runs it (engine/distributed.py)

    order = 50  # after the callbacks that add metrics at epoch end (order 0 by default): the epoch line shows them
    phases = ("fit",)

    def __init__(self, refresh_per_second: float = 10, plain_every_n_steps: int | None = None, console: Any = None):
        if not refresh_per_second > 0:
            raise ValueError(
                f"Invalid value for argument `refresh_per_second`. Received: refresh_per_second={refresh_per_second!r}; expected > 0"
            )
        if plain_every_n_steps is not None and (
            isinstance(plain_every_n_steps, bool) or not isinstance(plain_every_n_steps, int) or plain_every_n_steps < 1
        ):
            raise ValueError(
                f"Invalid value for argument `plain_every_n_steps`. Received: plain_every_n_steps={plain_every_n_steps!r}; expected an integer >= 1 or None"
            )
        self.refresh_per_second, self.plain_every_n_steps, self.console = (
            refresh_per_second,
            plain_every_n_steps,
            console,
        )
        self.terminal = console.is_terminal if console is not None else sys.stderr.isatty()
        self._bar: Any = None
        self._task: Any = None
        self._last_length: int | None = None  # batches in the last full epoch: the total when the loop gives none
        self._next_update = 0.0
        self._epoch_start = (0.0, 0)  # (time, batch index) when this epoch's timing began

    def listens(self, event: Event) -> bool | Every:
        if event is Event.BATCH_END and not self.terminal:
            return Every(steps=self.plain_every_n_steps) if self.plain_every_n_steps is not None else False
        if event is Event.BATCH_END:
            return True
        if event in (Event.FIT_START, Event.EPOCH_START, Event.FIT_END, Event.EXCEPTION):
            return self.terminal
        return True

    # -- the terminal bar ---------------------------------------------------
    def on_fit_start(self, state: State) -> None:
        from rich.console import Console  # lazily: the plain mode never imports rich
        from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn
        from rich.progress import Progress as RichProgress

        self.console = self.console or Console(stderr=True)
        self._bar = RichProgress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("eta"),
            TimeRemainingColumn(),
            TextColumn("{task.fields[speed]}"),
            TextColumn("{task.fields[loss]}"),
            console=self.console,
            refresh_per_second=self.refresh_per_second,
        )
        self._task = self._bar.add_task("", total=None, speed="", loss="")
        self._bar.start()

    def on_epoch_start(self, state: State) -> None:
        total = state.epoch_length or self._last_length
        self._bar.reset(
            self._task, total=total, completed=state.batch_index, description=state.describe_epoch(), speed="", loss=""
        )
        self._epoch_start = (time.monotonic(), state.batch_index)

    def on_batch_end(self, state: State) -> None:
        if not self.terminal:
            if "loss" in state.outputs:
                log.info(
                    "%s  step %d  loss=%s", state.describe_epoch(), state.step, _number(state.outputs["loss"].item())
                )
            return
        now = time.monotonic()
        if now < self._next_update:
            return
        self._next_update = now + 1.0 / self.refresh_per_second
        self._update(state, loss=state.outputs.get("loss"))

    def on_epoch_end(self, state: State) -> None:
        if self._bar is not None:
            if state.epoch_finished and state.batch_index:
                self._last_length = state.batch_index
            self._update(state, loss=None)  # state.outputs now holds a validation batch
        values = "  ".join(f"{key}={_number(value)}" for key, value in state.metrics.items())
        log.info("%s  %s", state.describe_epoch(), values)

    def _update(self, state: State, loss: Any) -> None:
        fields = {}
        if loss is not None:
            fields["loss"] = f"loss {_number(loss.item())}"  # the host sync this class throttles
        done, seconds = state.batch_index - self._epoch_start[1], time.monotonic() - self._epoch_start[0]
        if done > 0 and seconds > 0:
            fields["speed"] = f"{done / seconds:.1f} it/s"
        # Drawn now, not on the next tick of rich's refresh thread: the display shows every value read.
        self._bar.update(self._task, completed=state.batch_index, refresh=True, **fields)

    def on_fit_end(self, state: State) -> None:
        self._stop()

    def on_exception(self, state: State) -> None:
        self._stop()  # give the terminal back before the traceback prints

    def _stop(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None


def _number(value: Any) -> str:
    try:
        return f"{float(value):.4g}"
    except (TypeError, ValueError):
        return str(value)
