"""Checkpoints: ``last.ckpt`` always, ``best.ckpt`` by the monitored metric, optional top-k and step checkpoints.

``last.ckpt`` is the resume point (the one it replaced stays as
``previous.ckpt``, the fallback when ``last.ckpt`` is found damaged): written at every epoch's end and, with
``every_n_steps``, every N optimizer steps (at ``EPOCH_CHECKPOINT`` and ``BATCH_CHECKPOINT``, so it holds
every other callback's work of that epoch or step) (mid-epoch: the loader position,
RNG states and running metric sums are in it, so a resume continues bit for
bit). ``best.ckpt`` is the checkpoint with the best monitored value so far
(a hard link to that epoch's ``last.ckpt``, so it costs no second write); ``save_top_k`` > 1 keeps that many best epochs as
``epoch=E-step=S.ckpt`` too (E counted from 1). Every file is replaced atomically.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

from ..engine.callback import Callback, Every
from ..engine.checkpoints import manifest
from ..engine.events import Event
from ..engine.state import State
from ..runs.atomic import atomic_copy
from ..runs.folder import CheckpointFolder, RunFolder
from ._monitor import Monitor, watches_the_same

log = logging.getLogger("expresso")


class Checkpoint(Callback):
    def __init__(
        self,
        monitor: str | None = "val/loss",
        mode: str = "min",
        save_top_k: int = 1,
        every_n_steps: int | None = None,
        dirpath: str | None = None,
    ):
        if mode not in ("min", "max"):
            raise ValueError(f"Invalid value for argument `mode`. Received: mode={mode!r}; expected 'min' or 'max'")
        if save_top_k < 0:
            raise ValueError(
                f"Invalid value for argument `save_top_k`. Received: save_top_k={save_top_k}; expected >= 0"
            )
        if every_n_steps is not None and every_n_steps < 1:
            raise ValueError(
                f"Invalid value for argument `every_n_steps`. Received: every_n_steps={every_n_steps}; expected >= 1"
            )
        self.monitor, self.mode, self.save_top_k, self.every_n_steps = monitor, mode, save_top_k, every_n_steps
        self._monitor = Monitor(monitor, "Checkpoint") if monitor else None
        self.dirpath = Path(dirpath) if dirpath else None
        self.best: float | None = None
        self.best_epoch: int | None = None  # counted from 1
        self.top: list[tuple[float, str]] = []  # (value, file name) of the top-k epochs kept, best first

    def on_fit_start(self, state: State) -> None:
        if self.dirpath is None:
            if state.run_dir is None:
                raise ValueError("Checkpoint needs `dirpath` or a run folder (state.run_dir)")
            self.dirpath = RunFolder(state.run_dir).checkpoints.path
        self.dirpath.mkdir(parents=True, exist_ok=True)

    def listens(self, event: Event) -> bool | Every:
        if event is Event.BATCH_CHECKPOINT:
            return Every(steps=self.every_n_steps) if self.every_n_steps is not None else False
        return True

    def on_epoch_start(self, state: State) -> None:
        if self._monitor:
            self._monitor.epoch_started()

    def on_validation_end(self, state: State) -> None:
        if self._monitor:
            self._monitor.validation_ended()

    def on_fit_end(self, state: State) -> None:
        if self._monitor:
            self._monitor.finished()

    def on_batch_checkpoint(self, state: State) -> None:
        state.save_checkpoint(CheckpointFolder(self.dirpath).last, keep_previous=True)

    def on_epoch_checkpoint(self, state: State) -> None:
        value = self._monitor.read(state) if self._monitor else None  # None: not measured this epoch
        if value is not None and math.isnan(value):
            value = None
        improved = value is not None and self._better(value, self.best)
        if improved:
            self.best, self.best_epoch = value, state.epoch + 1
        # Bookkeeping first, so the checkpoint written below already holds it.
        kept, dropped = None, []
        if (
            value is not None
            and self.save_top_k > 1
            and (len(self.top) < self.save_top_k or self._better(value, self.top[-1][0]))
        ):
            kept = CheckpointFolder.top_k_name(state.epoch + 1, state.step)
            self.top = sorted([*self.top, (value, kept)], key=lambda item: item[0], reverse=self.mode == "max")
            self.top, dropped = self.top[: self.save_top_k], self.top[self.save_top_k :]
        folder = CheckpointFolder(self.dirpath)
        last = folder.last

        def after_write() -> None:  # runs once last.ckpt is on disk
            # A hard link where the filesystem allows: no second write, and it stays right, as last.ckpt is
            # later *replaced* (a new file), so best.ckpt keeps the old contents. The next checkpoint's folder
            # fsync makes the name durable (runs/atomic.py).
            if improved and self.save_top_k > 0:
                atomic_copy(last, folder.best, durable=True, sync_folder=False)
                manifest.alias(folder.path, folder.BEST, folder.LAST)
            if kept:
                atomic_copy(last, folder.path / kept, durable=True, sync_folder=False)
                manifest.alias(folder.path, kept, folder.LAST)
            for _, name in dropped:
                (folder.path / name).unlink(missing_ok=True)
                manifest.forget(folder.path, name)

        state.save_checkpoint(last, then=after_write, keep_previous=True)
        if improved and self.save_top_k > 0:
            log.info("epoch %d: %s improved to %.6g; saving %s", state.epoch + 1, self.monitor, value, folder.BEST)

    def _better(self, value: float, than: float | None) -> bool:
        if than is None:
            return True
        return value < than if self.mode == "min" else value > than

    def state_dict(self) -> dict[str, Any]:
        return {
            "best": self.best,
            "best_epoch": self.best_epoch,
            "top": [list(item) for item in self.top],
            "monitor": self.monitor,
            "mode": self.mode,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if not watches_the_same("Checkpoint", state, self.monitor, self.mode):
            return
        self.best, self.best_epoch = state["best"], state["best_epoch"]
        self.top = [(value, name) for value, name in state["top"]]
