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

from ..engine.callback import Every
from ..engine.checkpoints import manifest
from ..engine.events import Event
from ..engine.state import State
from ..runs.atomic import atomic_copy
from ..runs.fault_points import reached
from ..runs.folder import CheckpointFolder, RunFolder
from .metric_watcher import MetricWatcher

log = logging.getLogger("expresso")


class Checkpoint(MetricWatcher):
    """Writes the run's resume point and keeps its best epochs, so a run survives a crash and its best weights stay.

    ``last.ckpt`` is written at every epoch's end (with ``every_n_steps``,
    every N steps too); ``best.ckpt`` follows the monitored metric (the
    module docstring says how each file is kept). The best value, its epoch
    and the top-k list travel in the checkpoint, so a resumed run keeps the
    same best file; a resume that changed ``monitor`` or ``mode`` starts
    counting afresh.

    Args:
        monitor: the metric that decides ``best.ckpt`` and the top-k; None
            keeps ``last.ckpt`` only.
        mode: ``"min"`` when lower values are better, ``"max"`` when higher are.
        save_top_k: how many best epochs to keep: 0 keeps no ``best.ckpt``,
            1 only ``best.ckpt``, K > 1 also ``epoch=E-step=S.ckpt`` files.
        every_n_steps: also write ``last.ckpt`` every N optimizer steps
            (None: at epoch ends only).
        dirpath: the folder for the files (None: the run folder's checkpoints).
    """

    def __init__(
        self,
        monitor: str | None = "val/loss",
        mode: str = "min",
        save_top_k: int = 1,
        every_n_steps: int | None = None,
        dirpath: str | None = None,
    ):
        super().__init__(monitor, mode)
        if save_top_k < 0:
            raise ValueError(
                f"Invalid value for argument `save_top_k`. Received: save_top_k={save_top_k}; expected >= 0"
            )
        if every_n_steps is not None and every_n_steps < 1:
            raise ValueError(
                f"Invalid value for argument `every_n_steps`. Received: every_n_steps={every_n_steps}; expected >= 1"
            )
        self.save_top_k, self.every_n_steps = save_top_k, every_n_steps
        self.dirpath = Path(dirpath) if dirpath else None
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

    @property
    def _folder(self) -> CheckpointFolder:
        if self.dirpath is None:  # on_fit_start sets it, and checkpoint events come after it
            raise RuntimeError("Checkpoint has no folder before on_fit_start")
        return CheckpointFolder(self.dirpath)

    def on_batch_checkpoint(self, state: State) -> None:
        assert state.save_checkpoint is not None  # the Trainer sets it on the State its events carry
        state.save_checkpoint(self._folder.last, keep_previous=True)

    def on_epoch_checkpoint(self, state: State) -> None:
        value = self.read(state)  # None: not measured this epoch
        if value is not None and math.isnan(value):
            value = None
        improved = value is not None and self.better(value, self.best)
        if improved:
            self.best, self.best_epoch = value, state.epoch + 1
        # Bookkeeping first, so the checkpoint written below already holds it.
        kept, dropped = None, []
        if (
            value is not None
            and self.save_top_k > 1
            and (len(self.top) < self.save_top_k or self.better(value, self.top[-1][0]))
        ):
            kept = CheckpointFolder.top_k_name(state.epoch + 1, state.step)
            self.top = sorted([*self.top, (value, kept)], key=lambda item: item[0], reverse=self.mode == "max")
            self.top, dropped = self.top[: self.save_top_k], self.top[self.save_top_k :]
        folder = self._folder
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
                reached(f"{name}: removed")
                manifest.forget(folder.path, name)

        assert state.save_checkpoint is not None  # the Trainer sets it on the State its events carry
        state.save_checkpoint(last, then=after_write, keep_previous=True)
        if improved and self.save_top_k > 0:
            log.info("epoch %d: %s improved to %.6g; saving %s", state.epoch + 1, self.monitor, value, folder.BEST)

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "top": [list(item) for item in self.top]}

    def load_counts(self, state: dict[str, Any]) -> None:
        super().load_counts(state)
        self.top = [(value, name) for value, name in state["top"]]
