"""The mlflow logger's ending in a real SQLite store: a fit that raised is FAILED or KILLED there, never RUNNING."""

import functools

import pytest
import torch
from torch.utils.data import TensorDataset

from expresso.callbacks.preemption import Preempted
from expresso.engine import Callback, Trainer
from expresso.loggers import MLflowLogger

pytestmark = pytest.mark.filterwarnings("ignore:The ``noload`` loader strategy:DeprecationWarning")


class Raises(Callback):
    def __init__(self, error):
        self.error = error

    def on_epoch_end(self, state):
        raise self.error


def test_a_fit_that_raised_ends_its_mlflow_run_failed_or_killed(tmp_path):
    import mlflow

    x = torch.randn(8, 3, generator=torch.Generator().manual_seed(0))
    runs_root = tmp_path / "runs"
    for index, error in enumerate([RuntimeError("boom"), Preempted(15, "last.ckpt"), KeyboardInterrupt()]):
        trainer = Trainer(
            model=torch.nn.Linear(3, 2),
            loss=torch.nn.functional.cross_entropy,
            optimizer=functools.partial(torch.optim.SGD, lr=0.1),
            train_data=TensorDataset(x, (x.sum(1) > 0).long()),
            callbacks=[MLflowLogger(), Raises(error)],
            settings={"max_epochs": 1, "batch_size": 4},
            config={"name": "ends"},
            run_dir=runs_root / "ends" / f"run{index}",
        )
        with pytest.raises(type(error)):
            trainer.fit()
    client = mlflow.MlflowClient(f"sqlite:///{runs_root / 'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name("ends").experiment_id])
    assert sorted((run.info.run_name, run.info.status) for run in runs) == [
        ("run0", "FAILED"),
        ("run1", "KILLED"),
        ("run2", "KILLED"),
    ]
