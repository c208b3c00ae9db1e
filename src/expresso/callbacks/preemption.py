"""Preemption: SIGTERM or SIGUSR1 (SLURM's warning before the end of a job) stop a run cleanly, to be resumed.

A signal only sets a flag: the handler runs between two Python bytecodes,
possibly in the middle of a checkpoint write, so it must not write anything
itself. At the next step boundary (a batch's end, or an epoch's end) the
callback writes ``last.ckpt`` (atomically, keeping the one it replaces), then
raises ``Preempted``: the command marks run.json ``interrupted``, asks SLURM
to requeue the job when ``trainer.requeue`` is on, and exits with
``EXIT_PREEMPTED``. A second signal while that happens changes nothing: the
flag is already set, and the write is atomic either way.
"""

from __future__ import annotations

import signal
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

from ..engine.callback import Callback
from ..engine.state import State

EXIT_PREEMPTED = 75  # EX_TEMPFAIL (sysexits.h): "temporary failure, try again": what a scheduler should requeue
SIGNALS = (signal.SIGTERM, signal.SIGUSR1)


class Preempted(Exception):
    """The run stopped at a step boundary after a preemption signal; its last.ckpt is the resume point."""

    run_status = "interrupted"  # what loggers are told (Logger.finish)

    def __init__(self, signum: int, checkpoint: Path):
        self.signum, self.checkpoint = signum, checkpoint
        super().__init__(f"stopped by {signal.Signals(signum).name}; checkpoint {checkpoint}")


class Preemption(Callback):
    """Turns SIGTERM or SIGUSR1 into a checkpoint at the next step boundary and a ``Preempted`` stop, so the run can be resumed.

    ``install`` replaces the process's handlers for those signals (the
    command calls it around the fit), ``uninstall`` gives the previous ones
    back. ``received`` is the first signal received, None before one.

    Args:
        checkpoint: the file to write before stopping (the run folder's last.ckpt).
    """

    phases = ("fit",)

    def __init__(self, checkpoint: Path):
        self.checkpoint = Path(checkpoint)
        self.received: int | None = None
        # What signal.signal returns and takes back: a handler, SIG_DFL/SIG_IGN, or None (one not set from Python).
        self._previous: dict[int, Callable[[int, FrameType | None], Any] | int | signal.Handlers | None] = {}

    def install(self) -> None:
        for signum in SIGNALS:
            self._previous[signum] = signal.signal(signum, self._handle)

    def uninstall(self) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.received is None:
            self.received = signum

    def on_batch_checkpoint(self, state: State) -> None:
        if self.received is not None:
            self._stop(state, self.received)

    def on_epoch_checkpoint(self, state: State) -> None:
        if self.received is not None:
            self._stop(state, self.received)

    def _stop(self, state: State, signum: int) -> None:
        checkpoint = self.checkpoint

        def stop() -> None:  # once the checkpoint is on disk, and every other one of the step's end (engine/saving.py)
            raise Preempted(signum, checkpoint)

        assert state.save_checkpoint is not None  # the Trainer sets it on the State its events carry
        state.save_checkpoint(self.checkpoint, then=stop, keep_previous=True, wait=True)
