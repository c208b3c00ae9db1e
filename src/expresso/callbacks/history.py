"""metrics.csv: the run's history, one row per logged step or epoch, one column per value.

Step rows (every ``log_every_n_steps`` optimizer steps: an ``Every`` filter
on ``BATCH_END``) hold the batch loss as ``train/batch_loss``; epoch rows hold
every value in ``state.metrics`` (``train/loss``, ``val/acc``, ``lr``...).
Epochs count from 1, as the console shows them. Step losses stay tensors in a
buffer until the epoch ends, so logging costs no host sync per step.

The epoch row is taken at ``EPOCH_CHECKPOINT``, after every ``EPOCH_END``
handler, so a value any callback puts into ``state.metrics`` at epoch end is
in that epoch's row, whatever its order; the epoch's checkpoints are written
after the last ``EPOCH_CHECKPOINT`` handler, so they count the row.

Resume without duplicates: rows are flushed before every checkpoint and the
checkpoint records how many were written; a resumed run first cuts the file
back to that many rows, then appends what it recomputes. A new column (say
``val/acc`` after the first validation) rewrites the file with the wider
header; rows are few, so this is cheap.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import torch

from ..engine.callback import Callback, Every
from ..engine.events import Event
from ..engine.state import State
from ..runs.atomic import atomic_write
from ..runs.fault_points import reached
from ..runs.folder import RunFolder

FIXED = ("epoch", "step")


class History(Callback):
    """Writes the run's history to metrics.csv, so every value of every epoch can be read and plotted after the run.

    One row per epoch with every value in ``state.metrics``, and one every
    ``log_every_n_steps`` optimizer steps with the batch loss; the rows a
    checkpoint counts travel in it, so a resumed run's file has no
    duplicates (the module docstring says how).

    Args:
        path: the CSV file (None: the run folder's metrics.csv).
        log_every_n_steps: write a step row every N optimizer steps (>= 1).
    """

    def __init__(self, path: str | None = None, log_every_n_steps: int = 50):
        if isinstance(log_every_n_steps, bool) or not isinstance(log_every_n_steps, int) or log_every_n_steps < 1:
            raise ValueError(
                "Invalid value for argument `log_every_n_steps`. "
                f"Received: log_every_n_steps={log_every_n_steps!r}; expected an integer >= 1"
            )
        self.path = Path(path) if path else None
        self.log_every_n_steps = log_every_n_steps
        self.columns: list[str] = list(FIXED)
        self.rows_written = 0
        self._pending: list[dict[str, Any]] = []
        self._truncate_to: int | None = None

    def listens(self, event: Event) -> bool | Every:
        return Every(steps=self.log_every_n_steps) if event is Event.BATCH_END else True

    def on_fit_start(self, state: State) -> None:
        if self.path is None:
            if state.run_dir is None:
                raise ValueError("History needs `path` or a run folder (state.run_dir)")
            self.path = RunFolder(state.run_dir).history
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self._truncate_to is not None:
            self._truncate(self.path, self._truncate_to)
            self._truncate_to = None

    def on_batch_end(self, state: State) -> None:
        if "loss" in state.outputs:
            stage = {"stage": state.stage_name} if len(state.stages) > 1 else {}
            self._pending.append(
                {
                    "epoch": state.epoch + 1,
                    "step": state.step,
                    **stage,
                    "train/batch_loss": state.outputs["loss"].detach(),
                }
            )

    def on_epoch_checkpoint(self, state: State) -> None:
        stage = {"stage": state.stage_name} if len(state.stages) > 1 else {}
        self._pending.append({"epoch": state.epoch + 1, "step": state.step, **stage, **state.metrics})
        self.flush()

    def on_checkpoint_save(self, state: State) -> None:
        self.flush()

    def on_fit_end(self, state: State) -> None:
        self.flush()

    def on_exception(self, state: State) -> None:
        self.flush()

    def flush(self) -> None:
        path = self.path
        if not self._pending or path is None:
            return
        rows = [{k: _plain(v) for k, v in row.items()} for row in self._pending]
        self._pending = []
        new = [key for row in rows for key in row if key not in self.columns]
        if new or not path.exists():
            self.columns += list(dict.fromkeys(new))
            self._rewrite(path, self._read(path)[: self.rows_written] + rows)
        else:
            with path.open("a", newline="") as handle:
                csv.DictWriter(handle, self.columns).writerows(rows)
            reached(f"{path.name}: appended")
        self.rows_written += len(rows)

    def _read(self, path: Path) -> list[dict[str, str]]:
        if not path.exists():
            return []
        with path.open(newline="") as handle:
            return list(csv.DictReader(handle))

    def _rewrite(self, path: Path, rows: list[dict[str, Any]]) -> None:
        """The whole file again, atomically; not durable (an OS crash may lose the last rows, atomic.py says why)."""
        text = io.StringIO(newline="")
        # extrasaction: rows read back after a resume may carry columns the checkpoint predates
        writer = csv.DictWriter(text, self.columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
        atomic_write(path, text.getvalue(), durable=False)

    def _truncate(self, path: Path, count: int) -> None:
        self._rewrite(path, self._read(path)[:count])

    def state_dict(self) -> dict[str, Any]:
        return {"columns": list(self.columns), "rows_written": self.rows_written}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.columns = list(state["columns"])
        self.rows_written = state["rows_written"]
        self._pending = []  # rows of a stretch a rollback undoes
        if self.path is not None and self.path.exists():  # a rollback during the fit: cut the file back now
            self._truncate(self.path, self.rows_written)
        else:
            self._truncate_to = self.rows_written  # applied at fit start, once the file is known


def _plain(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return repr(value.item())
    if isinstance(value, float):
        return repr(value)
    return value
