"""``expresso.Trainer``: a run started from Python gets the callbacks a config run gets, and writes what it records."""

from __future__ import annotations

import csv
import functools

import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

import expresso
from expresso.callbacks import Checkpoint, History, ModelSummary, Progress
from expresso.engine import Callback


def _data(n: int = 16) -> TensorDataset:
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(n, 3, generator=generator)
    return TensorDataset(x, (x.sum(dim=1) > 0).long())


def _trainer(**kwargs) -> expresso.Trainer:
    torch.manual_seed(0)
    return expresso.Trainer(
        model=nn.Linear(3, 2),
        loss=nn.CrossEntropyLoss(),
        optimizer=functools.partial(torch.optim.SGD, lr=0.1),
        train_data=_data(),
        val_data=_data(8),
        settings={"max_epochs": 2, "batch_size": 4},
        **kwargs,
    )


def _kinds(trainer) -> list[type]:
    return [type(callback) for callback in trainer.callbacks.callbacks]


def test_with_a_run_dir_it_writes_the_history_and_the_checkpoints_a_config_run_writes(tmp_path):
    trainer = _trainer(run_dir=tmp_path)
    trainer.fit()
    with open(tmp_path / "metrics.csv", newline="") as handle:
        epochs = [row["epoch"] for row in csv.DictReader(handle) if row.get("val/loss")]
    assert epochs == ["1", "2"]
    assert (tmp_path / "checkpoints" / "last.ckpt").is_file()
    assert (tmp_path / "checkpoints" / "best.ckpt").is_file()
    assert {ModelSummary, Progress, Checkpoint, History} <= set(_kinds(trainer))


def test_without_a_run_dir_it_shows_progress_and_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    trainer = _trainer()
    trainer.fit()
    assert list(tmp_path.iterdir()) == []
    assert _kinds(trainer) == [ModelSummary, Progress]


def test_a_given_callback_of_a_defaults_class_replaces_it(tmp_path):
    mine = Checkpoint(dirpath=str(tmp_path / "mine"), monitor="val/loss", mode="min")
    trainer = _trainer(run_dir=tmp_path / "run", callbacks=[mine])
    assert [cb for cb in trainer.callbacks.callbacks if isinstance(cb, Checkpoint)] == [mine]
    trainer.fit()
    assert (tmp_path / "mine" / "last.ckpt").is_file()
    assert not (tmp_path / "run" / "checkpoints" / "last.ckpt").exists()


def test_default_callbacks_false_runs_only_the_given_ones_as_the_engines_trainer_does(tmp_path):
    class Count(Callback):
        epochs = 0

        def on_epoch_end(self, state) -> None:
            self.epochs += 1

    count = Count()
    trainer = _trainer(run_dir=tmp_path, callbacks=[count], default_callbacks=False)
    trainer.fit()
    assert trainer.callbacks.callbacks == [count] and count.epochs == 2
    assert not (tmp_path / "metrics.csv").exists()


def test_the_defaults_follow_the_settings_monitor_and_mode(tmp_path):
    trainer = expresso.Trainer(
        model=nn.Linear(3, 2),
        loss=nn.CrossEntropyLoss(),
        optimizer=functools.partial(torch.optim.SGD, lr=0.1),
        train_data=_data(),
        val_data=_data(8),
        settings={"max_epochs": 1, "batch_size": 4, "monitor": "train/loss", "mode": "max", "log_every_n_steps": 3},
        run_dir=tmp_path,
    )
    (checkpoint,) = [cb for cb in trainer.callbacks.callbacks if isinstance(cb, Checkpoint)]
    (history,) = [cb for cb in trainer.callbacks.callbacks if isinstance(cb, History)]
    assert (checkpoint.monitor, checkpoint.mode) == ("train/loss", "max")
    assert history.log_every_n_steps == 3


def test_the_top_level_trainer_is_the_engines_with_defaults():
    assert issubclass(expresso.Trainer, expresso.engine.Trainer)
    assert expresso.Trainer is not expresso.engine.Trainer


@pytest.mark.parametrize("bad", [{"strategy": "fsdp"}, {"devices": 0}, {"no_such_key": 1}])
def test_settings_the_engine_refuses_are_refused_before_any_default_is_built(bad):
    with pytest.raises(TypeError):
        expresso.Trainer(model=nn.Linear(3, 2), loss=nn.CrossEntropyLoss(), train_data=_data(), settings=bad)
