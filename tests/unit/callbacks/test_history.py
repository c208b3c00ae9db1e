"""metrics.csv: exact rows for steps and epochs, a header that widens, and a resume that leaves no duplicate."""

from __future__ import annotations

import functools
import re
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.data import TensorDataset

from expresso.callbacks import History
from expresso.engine import Callback, Trainer


def data(n: int) -> TensorDataset:
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(n, 3, generator=generator)
    return TensorDataset(x, (x.sum(dim=1) > 0).long())


def trainer_for(
    run_dir: Path | None, *callbacks, max_epochs=2, model_seed=0, train=12, shuffle=False, dropout=0.0, **settings
) -> Trainer:
    """``train`` samples in batches of 4, 8 validation samples (2 batches)."""
    torch.manual_seed(model_seed)
    return Trainer(
        model=nn.Sequential(nn.Linear(3, 8), nn.ReLU(), nn.Dropout(dropout), nn.Linear(8, 2)),
        loss=F.cross_entropy,
        optimizer=functools.partial(torch.optim.Adam, lr=0.05),
        train_data=data(train),
        val_data=data(8),
        callbacks=callbacks,
        settings={"max_epochs": max_epochs, "batch_size": 4, "seed": 3, "device": "cpu", **settings},
        dataloader={"shuffle": shuffle},
        run_dir=run_dir,
    )


class Recorder(Callback):
    """Reads the values the history should hold: each batch loss and the metrics at each epoch end."""

    order = 1000

    def __init__(self):
        self.batch_losses: dict[int, float] = {}
        self.epochs: list[dict] = []

    def on_batch_end(self, state):
        self.batch_losses[state.step] = state.outputs["loss"].item()

    def on_epoch_end(self, state):
        self.epochs.append(dict(state.metrics))


def csv_text(*rows: list) -> str:
    return "".join(",".join(str(cell) for cell in row) + "\r\n" for row in rows)


def test_metrics_csv_holds_step_rows_and_epoch_rows_with_exact_values(tmp_path):
    recorder = Recorder()
    trainer_for(tmp_path, History(log_every_n_steps=2), recorder).fit()

    loss, epochs = recorder.batch_losses, recorder.epochs
    assert list(epochs[0]) == ["train/loss", "val/loss"]
    assert (tmp_path / "metrics.csv").read_bytes().decode() == csv_text(
        ["epoch", "step", "train/batch_loss", "train/loss", "val/loss"],
        [1, 2, repr(loss[2]), "", ""],  # epochs counted from 1, as the console shows them
        [1, 3, "", repr(epochs[0]["train/loss"]), repr(epochs[0]["val/loss"])],
        [2, 4, repr(loss[4]), "", ""],
        [2, 6, repr(loss[6]), "", ""],
        [2, 6, "", repr(epochs[1]["train/loss"]), repr(epochs[1]["val/loss"])],
    )


@pytest.mark.parametrize("order", [-100, 0, 10_000])
def test_a_column_appearing_later_widens_the_header_and_keeps_earlier_rows(tmp_path, order):
    class Extra(Callback):
        """Writes a metric at epoch end; whatever its order, the epoch's row holds it."""

        def on_epoch_end(self, state):
            if state.epoch == 1:
                state.metrics["extra"] = 1.5

    recorder = Recorder()
    # No step rows; validation only after epoch 1 (the 2nd), so val/loss and extra both arrive then.
    extra = Extra()
    extra.order = order
    trainer_for(tmp_path, extra, History(log_every_n_steps=100), recorder, max_epochs=3, val_every_n_epochs=2).fit()

    epochs = recorder.epochs
    assert (tmp_path / "metrics.csv").read_bytes().decode() == csv_text(
        ["epoch", "step", "train/loss", "val/loss", "extra"],
        [1, 3, repr(epochs[0]["train/loss"]), "", ""],
        [2, 6, repr(epochs[1]["train/loss"]), repr(epochs[1]["val/loss"]), "1.5"],
        [3, 9, repr(epochs[2]["train/loss"]), "", ""],
    )


def test_without_a_path_or_run_folder_the_fit_fails_before_training():
    with pytest.raises(ValueError, match=r"History needs `path` or a run folder \(state.run_dir\)"):
        trainer_for(None, History()).fit()


def test_an_explicit_path_is_used_instead_of_the_run_folder(tmp_path):
    trainer_for(tmp_path / "run", History(path=str(tmp_path / "h.csv"), log_every_n_steps=100), max_epochs=1).fit()
    assert (tmp_path / "h.csv").read_text().splitlines()[0] == "epoch,step,train/loss,val/loss"


def test_history_creates_a_missing_run_folder(tmp_path):
    trainer_for(tmp_path / "run", History(log_every_n_steps=100), max_epochs=1).fit()
    assert (tmp_path / "run" / "metrics.csv").read_text().splitlines()[0] == "epoch,step,train/loss,val/loss"


# -- resume ---------------------------------------------------------------------------


class SaveAt(Callback):
    order = 100

    def __init__(self, path: Path, step: int):
        self.path, self.step = path, step

    def on_batch_end(self, state):
        if state.step == self.step:
            state.save_checkpoint(self.path)


class Crash(Callback):
    def __init__(self, step: int):
        self.step = step

    def on_batch_end(self, state):
        if state.step == self.step:
            raise RuntimeError("simulated crash")


def resumable(run_dir: Path, *callbacks, model_seed: int = 0) -> Trainer:
    """Shuffled batches and dropout: the resumed rows are equal only if the resume is exact."""
    run_dir.mkdir(parents=True, exist_ok=True)
    history = History(log_every_n_steps=3)
    return trainer_for(
        run_dir, history, *callbacks, max_epochs=3, train=16, shuffle=True, dropout=0.3, model_seed=model_seed
    )


def crash_then_resume(tmp_path: Path, save_step: int, crash_step: int) -> tuple[str, str, str]:
    """The whole run's metrics.csv, the crashed run's, and the crashed run's after its resume."""
    whole = tmp_path / "whole"
    resumable(whole).fit()

    crashed, resume_file = tmp_path / "crashed", tmp_path / "resume.ckpt"
    with pytest.raises(RuntimeError, match="simulated crash"):
        resumable(crashed, SaveAt(resume_file, save_step), Crash(crash_step)).fit()
    after_crash = (crashed / "metrics.csv").read_bytes().decode()

    resumable(crashed, model_seed=1).fit(resume_from=resume_file)
    return (whole / "metrics.csv").read_bytes().decode(), after_crash, (crashed / "metrics.csv").read_bytes().decode()


def test_a_resume_drops_the_rows_written_after_the_checkpoint_so_the_file_equals_the_uninterrupted_one(tmp_path):
    # 4 batches per epoch; the checkpoint is at step 6 (mid epoch 1), the crash at step 10 (mid epoch 2),
    # after epoch 1's row (step 8) and the step-9 row were written.
    whole, after_crash, resumed = crash_then_resume(tmp_path, save_step=6, crash_step=10)
    assert resumed == whole
    assert len(whole.splitlines()) == 1 + 4 + 3  # header, step rows 3 6 9 12, epoch rows 4 8 12
    assert [line.split(",")[:2] for line in after_crash.splitlines()[1:]] == [
        ["1", "3"],
        ["1", "4"],
        ["2", "6"],
        ["2", "8"],
        ["3", "9"],
    ]
    assert whole.startswith(after_crash)  # what the crash left was right, only longer than the checkpoint knew


def test_a_resume_from_before_the_header_widened_still_equals_the_uninterrupted_file(tmp_path):
    # The checkpoint at step 3 knows only epoch, step, train/batch_loss; epoch 0's row at step 4 adds columns.
    whole, after_crash, resumed = crash_then_resume(tmp_path, save_step=3, crash_step=6)
    assert after_crash.splitlines()[0] == "epoch,step,train/batch_loss,train/loss,val/loss"
    assert resumed == whole


@pytest.mark.parametrize("value", [0, 2.5, True])
def test_a_step_row_interval_that_is_not_a_positive_integer_is_refused_showing_it(value):
    with pytest.raises(
        ValueError,
        match=re.escape(
            f"Invalid value for argument `log_every_n_steps`. Received: log_every_n_steps={value!r}; expected an integer >= 1"
        ),
    ):
        History(log_every_n_steps=value)
