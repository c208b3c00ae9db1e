"""The tensorboard logger: scalars, hyperparameters and config.yaml as TensorBoard event files in the run folder.

``loggers: [csv, tensorboard]`` writes ``<run>/tensorboard/``; ``tensorboard
--logdir runs/`` shows every run under the runs root side by side. Each
metrics.csv value is a scalar of the same name at the same step
(``train/batch_loss`` every ``log_every_n_steps`` steps, the epoch values at
each epoch's last step); the flattened config goes to the HPARAMS tab and
config.yaml to TEXT; a callback's image (``ImageGrid``'s ``images/x_fake``)
goes to IMAGES at its step, a callback's text (the model summary) to TEXT.

A resumed run writes into the same folder with ``purge_step`` one past the
checkpoint's step: TensorBoard hides whatever the interrupted process wrote
after its last checkpoint (the resumed run writes those steps again), so the
curve is one line without repeated steps, and an image is there once per
step. The model summary, written at the start, is not written again. A run restarted from its
beginning (killed before its first checkpoint, state.step 0) removes the
event files the killed start wrote into the run folder, as its metrics.csv
is written again from the first row: a purge would hide its scalars but not
its hyperparameters (TensorBoard keeps a tag's first metadata, which holds
them). In a ``log_dir`` of the user's nothing is deleted: a start from step
0 purges from step 0. The writer is flushed before every checkpoint, so what a checkpoint
counts is on disk.

The final metrics (``final/val/acc``..., the selected weights' figures
measured after the fit) are scalars at the fit's last step. The
hyperparameters are written as a session without an experiment summary:
the HPARAMS tab then lists every run under ``--logdir`` with its own
hyperparameters and every scalar, the final metrics too, as a metric column
(an experiment summary would name one run's hyperparameters for all, and
torch's names no metric).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..config.loggers import missing_extra
from ..engine.state import State
from ..runs.folder import RunFolder
from .base import Logger, flatten

TEXT_FILES = (".yaml", ".yml", ".json", ".txt")
EVENT_FILES = "events.out.tfevents.*"  # what SummaryWriter writes (torch's FileWriter names them so)


class TensorBoardLogger(Logger):
    """Writes the run's scalars, hyperparameters and config.yaml as TensorBoard events (``torch.utils.tensorboard``).

    Args:
        log_dir: where the event files go (None: the run folder's ``tensorboard/``).
    """

    def __init__(self, log_dir: str | None = None) -> None:
        self.log_dir = log_dir
        self._writer: Any = None
        self._step = 0
        self._fresh = True

    def on_fit_start(self, state: State) -> None:
        message = missing_extra("tensorboard", "tensorboard", "the tensorboard logger")
        if message:
            raise ImportError(message)
        from torch.utils.tensorboard import SummaryWriter

        if self.log_dir is not None:
            folder = Path(self.log_dir)
        elif state.run_dir is not None:
            folder = RunFolder(state.run_dir).tensorboard
        else:
            raise ValueError("TensorBoardLogger needs `log_dir` or a run folder (state.run_dir)")
        if state.step == 0 and self.log_dir is None:
            # a start from the beginning: what an earlier, killed start wrote into the run folder counts for nothing
            for stale in folder.glob(EVENT_FILES):
                stale.unlink()
        earlier = folder.is_dir() and any(folder.iterdir())
        # steps after the checkpoint's were written by a process that died: hidden, and written again from here
        # (a log_dir of the user's is not emptied: a start from step 0 hides all it held, deleting nothing)
        self._writer = SummaryWriter(str(folder), purge_step=(state.step + 1 if state.step else 0) if earlier else None)
        self._fresh = not earlier or state.step == 0  # a start from the beginning sends its own
        self._step = state.step
        super().on_fit_start(state)

    def log_hyperparams(self, params: dict[str, Any]) -> None:
        if not self._fresh:  # the HPARAMS tab keeps one set per run: the one it started with
            return
        from torch.utils.tensorboard.summary import hparams

        values = {
            key: value if isinstance(value, (bool, int, float, str)) else str(value)
            for key, value in flatten(params).items()
        }
        _, session_start, _ = hparams(values, metric_dict={})  # not the experiment summary: the module docstring
        self._writer._get_file_writer().add_summary(session_start)

    def log_summary(self, metrics: dict[str, float], step: int, epoch: int) -> None:
        self.log_metrics(metrics, step=step, epoch=epoch)

    def log_artifact(self, path: Path) -> None:
        if path.suffix in TEXT_FILES:  # TensorBoard keeps no files: a text file is shown in TEXT, others are left out
            text = path.read_text(encoding="utf-8")
            self._writer.add_text(
                path.name, "".join(f"    {line}" for line in text.splitlines(keepends=True)), self._step
            )

    def log_metrics(self, metrics: dict[str, float], step: int, epoch: int) -> None:
        for key, value in metrics.items():
            self._writer.add_scalar(key, value, global_step=step)

    def log_image(self, name: str, path: Path, step: int) -> None:
        self._writer.add_image(name, read_png(path), global_step=step, dataformats="HWC")

    def log_text(self, name: str, text: str) -> None:
        if self._fresh:  # a resumed run's TEXT tab holds it from the start
            self._writer.add_text(name, "".join(f"    {line}" for line in text.splitlines(keepends=True)), self._step)

    def flush(self) -> None:
        if self._writer is not None:
            self._writer.flush()

    def finish(self, status: str) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None


def read_png(path: Path) -> Any:
    """A PNG as an (H, W, 3) float array in [0, 1] (gray as RGB, alpha dropped): what ``add_image`` takes as HWC."""
    import numpy as np
    from PIL import Image  # a dependency of matplotlib, which writes the grids

    with Image.open(path) as opened:
        return np.asarray(opened.convert("RGB"), dtype=np.float32) / 255.0
