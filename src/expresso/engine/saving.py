"""When a checkpoint asked for by a callback is written: at once, or after a step's or an epoch's last handler.

A callback asks through ``state.save_checkpoint(path, then=None,
keep_previous=False)``. At the end of a step (``BATCH_END``, then
``BATCH_CHECKPOINT``) and of an epoch (``EPOCH_END``, then
``EPOCH_CHECKPOINT``) the requests wait until every handler of both events
has run, so whatever a callback's order and event, its work (a metric in the
history row, its own state) is in the checkpoint of that step or epoch. A
handler that raises cancels them: the handlers after it did not run, so the
previous checkpoint stays the consistent resume point. Outside those events
(a test's own save, a rollback) a checkpoint is written at once.

Each write fires ``CHECKPOINT_SAVE`` first, then writes the file, then runs
``then`` (linking best.ckpt, or Preemption's stop). An exception from a
``then`` waits until every waiting checkpoint is written, so a callback
that stops the run once its checkpoint is on disk (Preemption) needs no
order to come last.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from .events import Event

Then = Callable[[], None] | None


class Saving:
    """Writes checkpoints through ``write(path, keep_previous)``, deferring those asked for at a step's or epoch's end."""

    def __init__(self, write: Callable[[Path, bool], None], fire: Callable[[Event], None]):
        self.write, self.fire = write, fire
        self._deferring = False
        self._waiting: list[tuple[Path, Then, bool]] = []

    def save(self, path: str | Path, then: Then = None, keep_previous: bool = False) -> None:
        """Write a checkpoint at ``path``: now, or after the end events being fired."""
        if self._deferring:
            self._waiting.append((Path(path), then, keep_previous))
            return
        self._write(Path(path), keep_previous)
        if then is not None:
            then()

    def fire_then_write(self, end: Event, checkpoint: Event) -> None:
        """Fire ``end`` then ``checkpoint``; the checkpoints their handlers ask for are written after the last one."""
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
        error: BaseException | None = None
        for path, then, keep_previous in waiting:
            self._write(path, keep_previous)
            if then is not None:
                try:
                    then()
                except BaseException as exc:  # raised once every waiting checkpoint is written
                    error = error or exc
        if error is not None:
            raise error

    def _write(self, path: Path, keep_previous: bool) -> None:
        self.fire(Event.CHECKPOINT_SAVE)
        self.write(path, keep_previous)
