"""What callbacks hand to the loggers (``state.add_image``, ``state.add_text``): ImageGrid's grids, each once with the
epoch's metrics at its step, and ModelSummary's tables, once per fit, the one text every logger gets."""

import functools
import logging

import torch
from torch.utils.data import TensorDataset

from expresso.callbacks import ImageGrid, ModelSummary
from expresso.engine import Callback, Trainer
from expresso.loggers import Logger


class Told(Logger):
    """Records what it is told, in order (the metric names of a row, not their values)."""

    def __init__(self):
        self.calls = []

    def log_metrics(self, metrics, step, epoch):
        self.calls.append(("metrics", epoch, step))

    def log_image(self, name, path, step):
        self.calls.append(("image", name, path, step))

    def log_text(self, name, text):
        self.calls.append(("text", name, text))

    def flush(self):
        self.calls.append(("flush",))

    def finish(self, status):
        self.calls.append(("finish", status))


class AlsoTold(Told):
    """A second tracker (its own checkpoint key)."""


class TextAtEpochEnd(Callback):
    """A text made mid-fit: it goes out with the epoch's row."""

    def on_epoch_end(self, state):
        state.add_text("note", f"epoch {state.epoch + 1}")


def trainer(run_dir, *callbacks, epochs=2) -> Trainer:
    x = torch.rand(8, 1, 2, 3, generator=torch.Generator().manual_seed(0))
    data = TensorDataset(x, (x.mean(dim=(1, 2, 3)) > 0.5).long())
    torch.manual_seed(0)
    return Trainer(
        model=torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(6, 2)),
        loss=torch.nn.functional.cross_entropy,
        optimizer=functools.partial(torch.optim.SGD, lr=0.1),
        train_data=data,
        val_data=data,
        callbacks=callbacks,
        settings={"max_epochs": epochs, "batch_size": 4},  # 2 steps an epoch
        run_dir=run_dir,
    )


def test_each_grid_reaches_every_logger_once_at_its_step_after_the_epochs_row_and_before_the_flush(tmp_path):
    first, second = Told(), AlsoTold()
    grid = ImageGrid(tensor="x", every_n_epochs=2, columns=2)
    trainer(tmp_path, grid, first, second, epochs=4).fit()
    assert grid.written == [tmp_path / "images" / "x-epoch002.png", tmp_path / "images" / "x-epoch004.png"]
    expected = [
        ("metrics", 1, 2),
        ("flush",),
        ("metrics", 2, 4),
        ("image", "images/x", grid.written[0], 4),
        ("flush",),
        ("metrics", 3, 6),
        ("flush",),
        ("metrics", 4, 8),
        ("image", "images/x", grid.written[1], 8),
        ("flush",),
        ("flush",),  # fit end: nothing left to send
        ("finish", "completed"),
    ]
    assert first.calls == expected
    assert second.calls == expected


def test_the_model_summary_reaches_every_logger_once_per_fit_as_the_text_it_logged(tmp_path, caplog):
    first, second = Told(), AlsoTold()
    run = trainer(tmp_path, ModelSummary(), first, second, epochs=1)
    with caplog.at_level(logging.INFO, logger="expresso"):
        run.fit()
    tables = [record.getMessage() for record in caplog.records if record.getMessage().startswith("model 'model'")]
    assert len(tables) == 1
    texts = [call for call in first.calls if call[0] == "text"]
    assert texts == [("text", "model_summary", tables[0])]
    assert first.calls[0] == texts[0]  # at the fit's start, before the first row
    assert [call for call in second.calls if call[0] == "text"][0][2] is texts[0][2]  # made once, for every logger
    run.state.max_epochs, run.settings.max_epochs = 2, 2
    run.fit()  # a second fit of the same trainer: its own summary, once; the first fit's is not sent again
    assert [call[1] for call in first.calls if call[0] == "text"] == ["model_summary", "model_summary"]


def test_a_text_made_during_the_fit_goes_out_with_the_next_row_once(tmp_path):
    told = Told()
    trainer(tmp_path, TextAtEpochEnd(), told).fit()
    assert told.calls == [
        ("metrics", 1, 2),
        ("text", "note", "epoch 1"),
        ("flush",),
        ("metrics", 2, 4),
        ("text", "note", "epoch 2"),
        ("flush",),
        ("flush",),
        ("finish", "completed"),
    ]
