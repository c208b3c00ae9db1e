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
from ..engine.checkpoints.errors import CheckpointError
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

    rank_zero_only = True  # it writes: rank 0 alone runs it (engine/distributed.py)

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
        # The links the epoch checkpoint being written still needs once on disk (``_link``), None when none wait.
        self._links: dict[str, Any] | None = None
        self._restored_from: Path | None = None

    def on_fit_start(self, state: State) -> None:
        if self.dirpath is None:
            if state.run_dir is None:
                raise ValueError("Checkpoint needs `dirpath` or a run folder (state.run_dir)")
            self.dirpath = RunFolder(state.run_dir).checkpoints.path
        self.dirpath.mkdir(parents=True, exist_ok=True)
        self._catch_up()
        self._set_aside_damaged()

    def _set_aside_damaged(self) -> None:
        """A resumed run checks best.ckpt and the top-k copies now, not when the final metrics load them after training.

        A damaged one is renamed ``<name>.damaged`` with a warning: the run trains on, a later epoch that beats
        the recorded best writes best.ckpt again, and if none does the final metrics measure the last weights
        (as they do for a run without best.ckpt), saying so.
        """
        folder = self._folder
        for path in [folder.best, *(folder.path / name for _, name in self.top)]:
            if not path.is_file():
                continue
            try:
                manifest.verify(path)
            except CheckpointError as damaged:
                aside = folder.set_aside(path.name)
                manifest.forget(folder.path, path.name)
                self.top = [(value, name) for value, name in self.top if name != path.name]
                log.warning(
                    "%s; moved it to %s: %s",
                    damaged,
                    aside.name,
                    f"unless an epoch beats {self.monitor}={self.best:.6g} (epoch {self.best_epoch}), the final metrics "
                    "measure the last weights"
                    if path == folder.best and self.best is not None
                    else "an epoch that ranks among the best writes it again",
                )

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
        # What must follow this epoch's last.ckpt travels inside it: a kill after the file, before these links,
        # is caught up by the resume from it (on_checkpoint_load), so best.ckpt never goes stale.
        links = {"best": improved and self.save_top_k > 0, "kept": kept, "dropped": [name for _, name in dropped]}
        self._links = links
        folder, epoch = self._folder, state.epoch + 1

        def after_write() -> None:  # runs once last.ckpt is on disk, on the writer thread (engine/saving.py)
            self._link(folder.last, links=links)  # this epoch's links: the next epoch's may already be set
            if self._links is links:  # done: the step checkpoints of the next epoch carry nothing to catch up
                self._links = None
            if improved and self.save_top_k > 0:  # said once it is true: a write that failed saved nothing
                log.info("epoch %d: %s improved to %.6g; saved %s", epoch, self.monitor, value, folder.BEST)

        assert state.save_checkpoint is not None  # the Trainer sets it on the State its events carry
        state.save_checkpoint(folder.last, then=after_write, keep_previous=True)

    def _link(self, source: Path, entry: dict[str, Any] | None = None, links: dict[str, Any] | None = None) -> None:
        """best.ckpt and the top-k copy of ``source`` (an epoch's checkpoint), the dropped ones removed; idempotent.

        A hard link where the filesystem allows: no second write, and it stays right, as last.ckpt is later
        *replaced* (a new file), so best.ckpt keeps the old contents. The next checkpoint's folder fsync makes
        the name durable (runs/atomic.py).
        """
        links = links if links is not None else self._links
        if not links:
            return
        folder = self._folder
        if links["best"]:
            atomic_copy(source, folder.best, durable=True, sync_folder=False)
            manifest.alias(folder.path, folder.BEST, source.name, entry)
        if links["kept"]:
            atomic_copy(source, folder.path / links["kept"], durable=True, sync_folder=False)
            manifest.alias(folder.path, links["kept"], source.name, entry)
        for name in links["dropped"]:
            (folder.path / name).unlink(missing_ok=True)
            reached(f"{name}: removed")
            manifest.forget(folder.path, name)

    def on_checkpoint_load(self, state: State) -> None:
        """Catch up the links of the epoch checkpoint just restored: the run that wrote it may have died before them."""
        self._restored_from = state.restored_from
        if self.dirpath is not None:  # a rollback mid-fit; a resume loads before on_fit_start, which links then
            self._catch_up()

    def _catch_up(self) -> None:
        source, self._restored_from = self._restored_from, None
        if source is not None and self._links:
            # The bytes the restored file holds: its name's record may still be the file it replaced.
            self._link(source, manifest.entry_of(source))
        self._links = None

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "top": [list(item) for item in self.top], "links": self._links}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self._links = state.get(
            "links"
        )  # decided by the run that wrote it, whatever this one monitors; older have none

    def load_counts(self, state: dict[str, Any]) -> None:
        super().load_counts(state)
        self.top = [(value, name) for value, name in state["top"]]
