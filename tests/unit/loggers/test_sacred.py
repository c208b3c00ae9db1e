"""The sacred logger's FileStorageObserver, in process: a fit that raised is FAILED (with its traceback) or
INTERRUPTED in run.json, never RUNNING; a resumed fit continues the same Sacred run, in the same folder."""

import functools
import json

import pytest
import torch
from torch.utils.data import TensorDataset

from expresso.callbacks.preemption import Preempted
from expresso.engine import Callback, Trainer
from expresso.loggers import SacredLogger

pytestmark = pytest.mark.slow  # make test-slow: it needs the sacred extra, which it installs


class Raises(Callback):
    def __init__(self, error):
        self.error = error

    def on_epoch_end(self, state):
        raise self.error


def fit(logger, run_dir, config, *callbacks):
    x = torch.randn(8, 3, generator=torch.Generator().manual_seed(0))
    Trainer(
        model=torch.nn.Linear(3, 2),
        loss=torch.nn.functional.cross_entropy,
        optimizer=functools.partial(torch.optim.SGD, lr=0.1),
        train_data=TensorDataset(x, (x.sum(1) > 0).long()),
        callbacks=[logger, *callbacks],
        settings={"max_epochs": 1, "batch_size": 4},
        config=config,
        run_dir=run_dir,
    ).fit()


def record(run_dir):
    return json.loads((run_dir / "sacred" / "1" / "run.json").read_text())


def test_a_fit_that_raised_ends_its_sacred_run_failed_or_interrupted_and_a_resumed_one_continues_it(tmp_path):
    config = {"name": "ends", "optimizer": {"lr": 0.1}}
    loggers = []
    for index, error in enumerate([RuntimeError("boom"), Preempted(15, "last.ckpt"), KeyboardInterrupt()]):
        loggers.append(SacredLogger())
        with pytest.raises(type(error)):
            fit(loggers[-1], tmp_path / f"run{index}", config, Raises(error))
    records = [record(tmp_path / f"run{index}") for index in range(3)]
    assert [entry["status"] for entry in records] == ["FAILED", "INTERRUPTED", "INTERRUPTED"]
    assert records[0]["fail_trace"][-1] == "RuntimeError: boom\n"
    assert [logger.run_id for logger in loggers] == ["1", "1", "1"]  # one Sacred run in each run folder

    resumed = SacredLogger()
    resumed.load_state_dict(loggers[1].state_dict())  # what the checkpoint of the preempted run carries
    fit(resumed, tmp_path / "run1", {"name": "ends", "optimizer": {"lr": 0.05}})
    assert sorted(path.name for path in (tmp_path / "run1" / "sacred").iterdir()) == ["1"]
    continued = record(tmp_path / "run1")
    assert (continued["status"], continued["start_time"]) == ("COMPLETED", records[1]["start_time"])
    # the settings the run continues with (Sacred's config is one dict, not a log of values)
    assert json.loads((tmp_path / "run1" / "sacred" / "1" / "config.json").read_text()) == {
        "name": "ends",
        "optimizer": {"lr": 0.05},
    }
    metrics = json.loads((tmp_path / "run1" / "sacred" / "1" / "metrics.json").read_text())
    assert {name: entry["steps"] for name, entry in metrics.items()} == {"train/loss": [2]}
