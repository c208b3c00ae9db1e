"""The Logger interface: what a tracker is told, and when."""

import functools

import pytest
import torch
from torch.utils.data import TensorDataset

from expresso.callbacks.preemption import Preempted
from expresso.engine import Callback, Trainer
from expresso.loggers import Logger
from expresso.loggers.base import flatten


class Told(Logger):
    def __init__(self):
        self.calls = []

    def log_hyperparams(self, params):
        self.calls.append(("hyperparams", params))

    def log_metrics(self, metrics, step, epoch):
        self.calls.append(("metrics", epoch, step, sorted(metrics)))

    def finish(self, status):
        self.calls.append(("finish", status))


class WritesLate(Callback):
    order = 10_000  # late, yet before every logger

    def on_epoch_end(self, state):
        state.metrics["late"] = 1.0


class Raises(Callback):
    def __init__(self, error):
        self.error = error

    def on_epoch_end(self, state):
        raise self.error


def fit(*callbacks, epochs=2, config=None, run_dir=None):
    """A tiny real fit (8 samples, batches of 4) with these callbacks; the trackers' tests use it too."""
    x = torch.randn(8, 3, generator=torch.Generator().manual_seed(0))
    trainer = Trainer(
        model=torch.nn.Linear(3, 2),
        loss=torch.nn.functional.cross_entropy,
        optimizer=functools.partial(torch.optim.SGD, lr=0.1),
        train_data=TensorDataset(x, (x.sum(1) > 0).long()),
        callbacks=callbacks,
        settings={"max_epochs": epochs, "batch_size": 4},
        config=config or {"name": "told"},
        run_dir=run_dir,
    )
    trainer.fit()


def test_a_logger_gets_the_config_once_every_epochs_metrics_with_late_ones_and_the_end():
    told = Told()
    fit(told, WritesLate())
    assert told.calls == [
        ("hyperparams", {"name": "told"}),
        ("metrics", 1, 2, ["late", "train/loss"]),
        ("metrics", 2, 4, ["late", "train/loss"]),
        ("finish", "completed"),
    ]


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (RuntimeError("boom"), "failed"),
        (KeyboardInterrupt(), "interrupted"),
        (Preempted(15, "last.ckpt"), "interrupted"),
    ],
)
def test_a_logger_is_told_how_a_fit_that_raised_ended(error, status):
    told = Told()
    with pytest.raises(type(error)):
        fit(told, Raises(error))
    assert told.calls[-1] == ("finish", status)


class ToldEverything(Told):
    def log_metrics(self, metrics, step, epoch):
        self.calls.append(("metrics", epoch, step, sorted(metrics), all(type(v) is float for v in metrics.values())))

    def flush(self):
        self.calls.append(("flush",))


def test_a_logger_gets_a_step_row_every_n_steps_before_its_epochs_row_and_a_flush_after_each_epoch():
    told = ToldEverything()
    told.log_every_n_steps = 1  # 2 steps an epoch
    fit(told)
    assert told.calls == [
        ("hyperparams", {"name": "told"}),
        ("metrics", 1, 1, ["train/batch_loss"], True),
        ("metrics", 1, 2, ["train/batch_loss"], True),
        ("metrics", 1, 2, ["train/loss"], True),
        ("flush",),
        ("metrics", 2, 3, ["train/batch_loss"], True),
        ("metrics", 2, 4, ["train/batch_loss"], True),
        ("metrics", 2, 4, ["train/loss"], True),
        ("flush",),
        ("flush",),  # fit end: nothing left to send
        ("finish", "completed"),
    ]


def test_flatten_names_every_leaf_by_its_key_path_and_keeps_empty_collections():
    config = {"name": "x", "optimizer": {"lr": 0.1, "betas": [0.9, 0.99]}, "callbacks": [], "task": {}, "init": None}
    assert flatten(config) == {
        "name": "x",
        "optimizer.lr": 0.1,
        "optimizer.betas.0": 0.9,
        "optimizer.betas.1": 0.99,
        "callbacks": [],
        "task": {},
        "init": None,
    }


class CannotFinish(Told):
    def finish(self, status):
        raise OSError("the tracking store is gone")


def test_the_fits_own_error_propagates_when_a_logger_cannot_record_the_end(caplog):
    with pytest.raises(RuntimeError, match="boom"):
        fit(CannotFinish(), Raises(RuntimeError("boom")))
    assert "CannotFinish could not record how the fit ended (failed): the tracking store is gone" in caplog.text


class ToldSummary(Told):
    def log_summary(self, metrics, step, epoch):
        self.calls.append(("summary", metrics, step, epoch))


def test_a_logger_held_open_past_the_fit_gets_the_summary_then_the_end_once():
    told = ToldSummary()
    told.finish_at_fit_end = False  # as the CLI holds it, for the final metrics measured after the fit
    fit(told)
    assert told.calls[-1] == ("metrics", 2, 4, ["train/loss"])  # the fit ended, the tracker run did not
    told.end("completed", {"final/val/acc": 0.5}, step=4, epoch=2)
    told.end("failed")  # a later ending (the CLI's `finally`) changes nothing
    assert told.calls[-2:] == [("summary", {"final/val/acc": 0.5}, 4, 2), ("finish", "completed")]


def test_a_logger_held_open_is_ended_by_the_fits_exception_and_not_again():
    told = ToldSummary()
    told.finish_at_fit_end = False
    with pytest.raises(RuntimeError, match="boom"):
        fit(told, Raises(RuntimeError("boom")))
    told.end("completed", {"final/val/acc": 0.5}, step=4, epoch=2)
    assert [call for call in told.calls if call[0] in ("summary", "finish")] == [("finish", "failed")]


def test_an_end_the_tracker_cannot_take_is_one_warning(caplog):
    logger = CannotFinish()
    logger.end("completed", {"final/val/acc": 0.5})
    assert "CannotFinish could not record how the run ended (completed): the tracking store is gone" in caplog.text
