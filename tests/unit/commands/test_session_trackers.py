"""run_fit ends the trackers after the final evaluation: its metrics then ``completed``, or how that evaluation ended.

Real tiny trainings in a run folder (tmp_path), the command's own run_fit; the loggers are held open past the fit.
"""

from __future__ import annotations

import functools
import logging

import pytest
import torch
from torch.utils.data import TensorDataset

from expresso.callbacks.preemption import Preemption
from expresso.commands.session import run_fit
from expresso.engine import Callback, Trainer
from expresso.loggers import Logger
from expresso.runs.record import RunRecord, read_record


class Told(Logger):
    def __init__(self):
        self.calls = []

    def log_summary(self, metrics, step, epoch):
        self.calls.append(("summary", metrics, step, epoch))

    def finish(self, status):
        self.calls.append(("finish", status))


class FailsFinalEvaluation(Callback):
    def __init__(self, error):
        self.error = error

    def on_eval_start(self, state):
        if state.phase == "validate":  # after the fit: the final evaluation
            raise self.error


@pytest.fixture
def fitted(tmp_path, monkeypatch):
    """``fitted(*callbacks)``: run_fit of a 2-epoch run in tmp_path with a Told logger; (exit status or exception, logger)."""
    logger = logging.getLogger("expresso")  # run_fit sets it up for a CLI process: restored after the test
    monkeypatch.setattr(logger, "propagate", logger.propagate)
    monkeypatch.setattr(logger, "level", logger.level)

    def fit(*callbacks):
        x = torch.randn(12, 3, generator=torch.Generator().manual_seed(0))
        data = TensorDataset(x, (x.sum(1) > 0).long())
        told = Told()
        trainer = Trainer(
            model=torch.nn.Linear(3, 2),
            loss=torch.nn.functional.cross_entropy,
            optimizer=functools.partial(torch.optim.SGD, lr=0.1),
            train_data=data,
            val_data=data,
            callbacks=[told, *callbacks],
            settings={"max_epochs": 2, "batch_size": 4},
            config={"name": "told"},
            run_dir=tmp_path,
        )
        record = RunRecord(tmp_path, {"status": "running"})
        try:
            outcome = run_fit(trainer, record, Preemption(tmp_path / "checkpoints" / "last.ckpt"))
        except RuntimeError as exc:
            outcome = exc
        return outcome, told.calls

    return fit


def test_the_trackers_get_the_final_metrics_at_the_last_step_then_completed(fitted, tmp_path):
    outcome, calls = fitted()
    final = read_record(tmp_path / "run.json")["summary"]["final"]
    assert outcome == 0 and sorted(final["metrics"]) == ["val/loss"]
    assert calls == [("summary", {"final/val/loss": final["metrics"]["val/loss"]}, 6, 2), ("finish", "completed")]


@pytest.mark.parametrize(
    ("error", "outcome", "status"),
    [(RuntimeError("the final evaluation failed"), RuntimeError, "failed"), (KeyboardInterrupt(), 130, "interrupted")],
)
def test_a_final_evaluation_that_fails_ends_the_trackers_as_the_record_without_a_summary(
    fitted, tmp_path, error, outcome, status
):
    result, calls = fitted(FailsFinalEvaluation(error))
    assert (type(result) if isinstance(result, Exception) else result) == outcome
    assert read_record(tmp_path / "run.json")["status"] == status
    assert calls == [("finish", status)]
