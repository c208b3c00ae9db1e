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
checkpoint holds the rows written so far (a step row every
``log_every_n_steps`` steps and one per epoch; measured: ~50 bytes a step
row and ~22 bytes a value of an epoch row). A resumed run writes the file
again from those rows, then appends what it recomputes, so rows a kill left
after the checkpoint go, and a damaged file (a flipped byte, cut short, emptied, bytes that are not text,
deleted) is rebuilt exactly, with a warning naming the file and what was
wrong: the file is never read back. A checkpoint written before rows were
kept holds only their count: the file is cut back to that many rows, or to
its sound rows before the first broken one, with a warning. A new
column (say ``val/acc`` after the first validation) rewrites the file with
the wider header; rows are few, so this is cheap.
"""

from __future__ import annotations

import csv
import io
import logging
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

log = logging.getLogger("expresso")


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

    rank_zero_only = True  # it writes: rank 0 alone runs it (engine/distributed.py)

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
        self._rows: list[dict[str, Any]] = []  # every row written so far, as written: the file can be rebuilt from them
        self._pending: list[dict[str, Any]] = []
        self._truncate_to: int | None = None
        self._rebuild_from: str | None = None  # restored rows to write at fit start; the checkpoint they came from

    def listens(self, event: Event) -> bool | Every:
        return Every(steps=self.log_every_n_steps) if event is Event.BATCH_END else True

    def on_fit_start(self, state: State) -> None:
        if self.path is None:
            if state.run_dir is None:
                raise ValueError("History needs `path` or a run folder (state.run_dir)")
            self.path = RunFolder(state.run_dir).history
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self._rebuild_from is not None:
            self._rebuild(self.path)
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
            earlier = self._rows if self._kept() else self._read(path)[: self.rows_written]
            self._rewrite(path, earlier + rows)
        else:
            with path.open("a", newline="") as handle:
                csv.DictWriter(handle, self.columns).writerows(rows)
            reached(f"{path.name}: appended")
        self._rows += rows
        self.rows_written += len(rows)

    def _kept(self) -> bool:
        """Whether every row written so far is in memory (not so after loading a checkpoint that kept only their count)."""
        return len(self._rows) == self.rows_written

    def _text(self, rows: list[dict[str, Any]]) -> str:
        text = io.StringIO(newline="")
        # extrasaction: rows read back after a resume may carry columns the checkpoint predates
        writer = csv.DictWriter(text, self.columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
        return text.getvalue()

    def _rebuild(self, path: Path) -> None:
        """The file again from the restored rows (dropping rows written after the checkpoint); a warning if it was damaged."""
        expected = self._text(self._rows)
        damage = _damage(path, expected, len(self._rows))
        if damage is not None:
            log.warning(
                "expresso: warning: %s %s: rebuilt its %d rows from %s",
                path,
                damage,
                len(self._rows),
                self._rebuild_from,
            )
        self._rebuild_from = None
        atomic_write(path, expected, durable=False)

    def _read(self, path: Path) -> list[dict[str, str]]:
        """The file's sound rows up to the first that is not (an older checkpoint's only source): never a broken row."""
        if not path.exists():
            return []
        data = path.read_bytes()
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:  # the rows before the damage are still sound
            text = data[: exc.start].decode("utf-8")
        lines = text.splitlines(keepends=True)
        sound = [line for line in lines if line.endswith("\n")]  # a last line without its end was cut short
        reader = csv.reader(sound)
        header = next(reader, [])
        rows = []
        for fields in reader:
            if len(fields) != len(header) or not all(fields[i].isdigit() for i in range(min(2, len(fields)))):
                break
            rows.append(dict(zip(header, fields)))
        return rows

    def _rewrite(self, path: Path, rows: list[dict[str, Any]]) -> None:
        """The whole file again, atomically; not durable (an OS crash may lose the last rows, atomic.py says why)."""
        atomic_write(path, self._text(rows), durable=False)

    def _truncate(self, path: Path, count: int) -> None:
        rows = self._read(path)[:count]
        if len(rows) < count:
            log.warning(
                "expresso: warning: %s holds %d sound rows of the %d the checkpoint counts (it predates keeping"
                " them): kept those, the rest are lost",
                path,
                len(rows),
                count,
            )
        self._rows, self.rows_written = rows, len(rows)  # kept from here on: the next checkpoint holds them
        self._rewrite(path, rows)

    def state_dict(self) -> dict[str, Any]:
        state: dict[str, Any] = {"columns": list(self.columns), "rows_written": self.rows_written}
        if self._kept():  # each row as a list in column order (a column it lacks: ""), so keys are not repeated
            state["rows"] = [[row.get(column, "") for column in self.columns] for row in self._rows]
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.columns = list(state["columns"])
        self.rows_written = state["rows_written"]
        self._pending = []  # rows of a stretch a rollback undoes
        kept = state.get("rows")
        if kept is not None:  # the file is written again from these at fit start (or now, during the fit)
            self._rows = [{column: value for column, value in zip(self.columns, row) if value != ""} for row in kept]
            self._rebuild_from = "the checkpoint"
            self._truncate_to = None
            if self.path is not None:  # a rollback during the fit
                self._rebuild(self.path)
            return
        self._rows = []  # an older checkpoint: only the count is known
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


def _damage(path: Path, expected: str, rows: int) -> str | None:
    """What is wrong with ``path`` against the ``expected`` text of its first ``rows`` rows (None: it starts with them)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return "is missing"
    except OSError as exc:
        return f"cannot be read ({exc.strerror})"
    wanted = expected.encode("utf-8")
    if data.startswith(wanted):
        return None  # rows written after the checkpoint may follow: they are recomputed
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return f"is not UTF-8 text (byte {exc.start})"
    have, want = text.splitlines(keepends=True), expected.splitlines(keepends=True)
    for number, (line, row) in enumerate(zip(have, want), start=1):
        if line != row:
            if number == len(have) and row.startswith(line):
                return f"is cut short inside line {number}: {max(number - 2, 0)} of the {rows} rows the checkpoint counts are whole"
            return f"has a damaged line {number} (not what the checkpoint recorded)"
    return f"holds {max(len(have) - 1, 0)} of the {rows} rows the checkpoint counts" if have else "is empty"
