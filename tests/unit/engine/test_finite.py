"""The default non-finite check (engine/finite.py): a NaN epoch ends the fit, and no checkpoint holds non-finite weights."""

from __future__ import annotations

import functools

import pytest
import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.data import TensorDataset

from expresso.callbacks import Checkpoint
from expresso.engine import Trainer
from expresso.engine.finite import NonFiniteLossError


class NaNFromCall(nn.Module):
    """Cross-entropy, times NaN from its ``first``-th call on (3 batches an epoch: call 4 is epoch 2's first step)."""

    def __init__(self, first: int):
        super().__init__()
        self.first, self.calls = first, 0

    def forward(self, prediction, target):
        self.calls += 1
        loss = F.cross_entropy(prediction, target)
        return loss * float("nan") if self.calls >= self.first else loss


def make_trainer(*callbacks, loss, max_epochs=3, **settings) -> Trainer:
    """12 samples in batches of 4, no shuffling, no validation: 3 steps an epoch."""
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(12, 3, generator=generator)
    torch.manual_seed(0)
    return Trainer(
        model=nn.Linear(3, 2),
        loss=loss,
        optimizer=functools.partial(torch.optim.SGD, lr=0.1),
        train_data=TensorDataset(x, (x.sum(dim=1) > 0).long()),
        callbacks=callbacks,
        settings={"max_epochs": max_epochs, "batch_size": 4, "device": "cpu", **settings},
        dataloader={"shuffle": False},
    )


def epoch_one_weights() -> dict[str, torch.Tensor]:
    """The weights after one clean epoch: what the poisoned runs' last.ckpt must hold."""
    trainer = make_trainer(loss=F.cross_entropy, max_epochs=1)
    trainer.fit()
    return trainer.graph.models["model"].state_dict()


def saved_weights(path) -> dict[str, torch.Tensor]:
    return torch.load(path, map_location="cpu", weights_only=True)["models"]["model"]


def assert_same(a: dict, b: dict) -> None:
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), (a, b)
    assert all(torch.isfinite(v).all() for v in a.values())


def test_a_nan_epoch_ends_the_fit_and_its_checkpoint_is_never_written(tmp_path):
    folder = tmp_path / "checkpoints"
    trainer = make_trainer(Checkpoint(monitor=None, dirpath=str(folder)), loss=NaNFromCall(first=4))
    with pytest.raises(NonFiniteLossError) as caught:
        trainer.fit()
    assert str(caught.value) == (
        "non-finite training loss in epoch 2: train/loss=nan after step 6; the epoch was not saved;"
        f" the last checkpoint, {folder / 'last.ckpt'}, holds the finite weights of the end of epoch 1 (step 3)"
    )
    assert trainer.state.epoch == 1 and trainer.state.step == 6  # it stopped at epoch 2's end, not later
    assert sorted(p.name for p in folder.iterdir()) == [
        "last.ckpt",
        "manifest.copy.json",
        "manifest.json",
    ]  # no previous.ckpt: one write
    assert_same(saved_weights(folder / "last.ckpt"), epoch_one_weights())
    assert torch.load(folder / "last.ckpt", weights_only=True)["loop"]["step"] == 3


def test_a_step_checkpoint_of_non_finite_weights_is_refused_and_the_previous_one_kept(tmp_path):
    folder = tmp_path / "checkpoints"
    trainer = make_trainer(Checkpoint(monitor=None, dirpath=str(folder), every_n_steps=2), loss=NaNFromCall(first=4))
    with pytest.raises(NonFiniteLossError) as caught:
        trainer.fit()
    last = folder / "last.ckpt"
    assert str(caught.value) == (
        f"non-finite weights at step 4 (epoch 2, batch 1): model.weight, model.bias; {last} was not written;"
        f" the last checkpoint, {last}, holds the finite weights of the end of epoch 1 (step 3)"
    )
    assert trainer.state.step == 4  # the step whose checkpoint was refused; nothing trained after it
    assert_same(saved_weights(last), epoch_one_weights())


def test_with_the_check_off_the_run_trains_on_with_non_finite_weights(tmp_path):
    folder = tmp_path / "checkpoints"
    trainer = make_trainer(
        Checkpoint(monitor=None, dirpath=str(folder)), loss=NaNFromCall(first=4), stop_on_non_finite=False
    )
    metrics = trainer.fit()
    assert trainer.state.step == 9 and metrics["train/loss"] != metrics["train/loss"]  # NaN
    assert not torch.isfinite(saved_weights(folder / "last.ckpt")["weight"]).all()
