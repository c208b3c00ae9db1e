"""Tiny real trainings for the callback tests: 16 samples, 3 features, 2 classes, batches of 4."""

from __future__ import annotations

import functools

import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

from expresso.engine import Callback, Trainer


def tiny_data(n: int = 16) -> TensorDataset:
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(n, 3, generator=generator)
    return TensorDataset(x, (x.sum(dim=1) > 0).long())


class Recorder(Callback):
    """Writes down what a test asserts on: which epochs ended, the LR each batch trained with."""

    order = 1000  # after every callback under test

    def __init__(self):
        self.epochs: list[int] = []
        self.batch_lrs: list[float] = []
        self.epoch_metrics: list[dict] = []

    def on_batch_start(self, state) -> None:
        self.batch_lrs.append(next(iter(state.optimizers.values())).param_groups[0]["lr"])

    def on_epoch_end(self, state) -> None:
        self.epochs.append(state.epoch)
        self.epoch_metrics.append(dict(state.metrics))


class SaveAt(Callback):
    """Writes a checkpoint at the end of one epoch (or after one step), as the Checkpoint callback would."""

    order = 100

    def __init__(self, path, epoch: int | None = None, step: int | None = None):
        self.path, self.epoch, self.step = path, epoch, step

    def on_epoch_end(self, state) -> None:
        if state.epoch == self.epoch:
            state.save_checkpoint(self.path)

    def on_batch_end(self, state) -> None:
        if state.step == self.step:
            state.save_checkpoint(self.path)


@pytest.fixture
def make_trainer():
    """``make_trainer(*callbacks, max_epochs=3, lr=0.1, model=None, val=True, **settings)``: a seeded tiny Trainer.

    ``data`` / ``val_data`` replace the default datasets, ``metrics`` adds torchmetrics metrics, ``run_dir`` gives
    it a run folder.
    """

    def make(
        *callbacks,
        max_epochs=3,
        lr=0.1,
        model=None,
        val=True,
        data=None,
        val_data=None,
        metrics=None,
        run_dir=None,
        **settings,
    ):
        torch.manual_seed(0)
        return Trainer(
            model=model or nn.Linear(3, 2),
            loss=nn.functional.cross_entropy,
            optimizer=functools.partial(torch.optim.SGD, lr=lr),
            train_data=data or tiny_data(),
            val_data=(val_data or tiny_data(8)) if val else None,
            metrics=metrics,
            callbacks=callbacks,
            settings={"max_epochs": max_epochs, "batch_size": 4, **settings},
            dataloader={"shuffle": False},
            run_dir=run_dir,
        )

    return make


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def save_at(tmp_path):
    """``save_at(epoch=E)`` or ``save_at(step=S)``: a callback writing tmp_path/"resume.ckpt" there."""
    return functools.partial(SaveAt, tmp_path / "resume.ckpt")
