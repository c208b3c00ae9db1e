"""When a checkpoint asked for by a callback is written: after a step's or an epoch's last handler, on the writer thread.

A callback asks through ``state.save_checkpoint(path, then=None,
keep_previous=False, wait=False)``. At the end of a step (``BATCH_END``,
then ``BATCH_CHECKPOINT``) and of an epoch (``EPOCH_END``, then
``EPOCH_CHECKPOINT``) the requests wait until every handler of both events
has run, so whatever a callback's order and event, its work (a metric in the
history row, its own state) is in the checkpoint of that step or epoch. A
handler that raises cancels them: the handlers after it did not run, so the
previous checkpoint stays the consistent resume point. Outside those events
(a test's own save, a rollback) a checkpoint is written at once: ``save``
returns with it on disk.

Each write fires ``CHECKPOINT_SAVE``, captures the state on the training
thread, and hands the file to the writer thread (checkpoints/writer.py says
why), which writes it, then runs ``then`` (linking best.ckpt, Preemption's
stop). Before capturing, a write waits for the previous one: one write in
flight, so what a capture sees of a callback never depends on how far the
previous write got. A failed write is raised at the next wait; so is an
exception from a ``then``, held back until every checkpoint of that end is
written, so a callback that stops the run once its checkpoint is on disk
(Preemption, with ``wait=True``: the end waits for its writes) needs no
order to come last. ``wait()`` (``state.wait_for_checkpoints``) returns once
every write is done: the fit's end, a checkpoint read and the exception path
call it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from .checkpoints.writer import Writes
from .events import Event

log = logging.getLogger("expresso")
Then = Callable[[], None] | None
Prepare = Callable[[Path, bool], Callable[[], None]]  # (path, keep_previous) -> the write, to run on the writer thread


class Saving:
    """Writes checkpoints through ``prepare(path, keep_previous)``, deferring those asked for at a step's or epoch's end."""

    def __init__(self, prepare: Prepare, fire: Callable[[Event], None]):
        self.prepare, self.fire = prepare, fire
        self.writes = Writes()
        self._deferring = False
        self._waiting: list[tuple[Path, Then, bool, bool]] = []

    def save(self, path: str | Path, then: Then = None, keep_previous: bool = False, wait: bool = False) -> None:
        """Write a checkpoint at ``path``: now, or after the end events being fired (``wait``: that end waits for it)."""
        if self._deferring:
            self._waiting.append((Path(path), then, keep_previous, wait))
            return
        self._write(Path(path), keep_previous, then)
        self.wait()

    def fire_then_write(self, end: Event, checkpoint: Event) -> None:
        """Fire ``end`` then ``checkpoint``; the checkpoints their handlers ask for are handed over after the last one."""
        self._deferring = True
        try:
            self.fire(end)
            self.fire(checkpoint)
        except BaseException:
            self._waiting.clear()
            raise
        finally:
            self._deferring = False
        if not self._waiting:
            return
        waiting, self._waiting = self._waiting, []
        for path, then, keep_previous, _ in waiting:
            self._write(path, keep_previous, then, hold=True)
        if any(wait for *_, wait in waiting):
            self.wait()

    def wait(self) -> None:
        """Return once every checkpoint handed over is on disk and its ``then`` has run; raise the first failure."""
        self.writes.wait()

    def finish(self, failure: BaseException) -> None:
        """``wait()`` on the way out of a failed fit: a write's own failure is logged, ``failure`` stays the one raised.

        Ctrl-C does not wait: the run stops now, and a write in flight is
        abandoned, leaving the previous checkpoint, as a kill during a write does.
        """
        if isinstance(failure, KeyboardInterrupt):
            self.writes.abandon()
            return
        try:
            self.wait()
        except Exception as exc:  # a second Ctrl-C while waiting is not a write's failure: it propagates
            if exc is not failure:
                log.warning("expresso: warning: a checkpoint write failed while the fit was ending: %s", exc)

    def _write(self, path: Path, keep_previous: bool, then: Then, hold: bool = False) -> None:
        self.writes.wait(hold=hold)  # one write in flight: the capture below sees what the previous write left
        self.fire(Event.CHECKPOINT_SAVE)
        self.writes.submit(self.prepare(path, keep_previous), then)
