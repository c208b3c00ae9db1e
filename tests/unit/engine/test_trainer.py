"""The Trainer: the same result as a hand-written PyTorch loop, exact epoch metrics, no host sync per step."""

from __future__ import annotations

import functools
import random

import numpy as np
import pytest
import torch
from sklearn.metrics import accuracy_score
from torch import nn
from torch.nn import functional as F
from torch.utils.data import TensorDataset
from torchmetrics.classification import MulticlassAccuracy

from expresso.callbacks import Checkpoint, History
from expresso.data import Digits
from expresso.engine import Callback, Trainer
from expresso.models import MLP

MODEL_SEED, FIT_SEED = 3, 7


def digits_mlp() -> MLP:
    torch.manual_seed(MODEL_SEED)
    return MLP(num_classes=10, hidden=(32,), dropout=0.2)


def test_training_equals_a_hand_written_pytorch_loop_with_the_same_batches_and_seeds():
    data = Digits("train")
    model = digits_mlp()
    trainer = Trainer(
        model=model,
        loss=F.cross_entropy,
        optimizer=torch.optim.Adam(model.parameters(), lr=1e-3),
        train_data=data,
        settings={"max_epochs": 2, "batch_size": 32, "seed": FIT_SEED, "device": "cpu"},
        dataloader={"shuffle": True},
    )
    trainer.fit()

    reference = digits_mlp()
    optimizer = torch.optim.Adam(reference.parameters(), lr=1e-3)
    random.seed(FIT_SEED)
    np.random.seed(FIT_SEED)
    torch.manual_seed(FIT_SEED)
    reference.train()
    for epoch in range(2):
        order = torch.randperm(len(data), generator=torch.Generator().manual_seed(FIT_SEED + epoch))
        for indices in order.split(32):
            items = [data[i] for i in indices.tolist()]
            x, y = torch.stack([item[0] for item in items]), torch.stack([item[1] for item in items])
            F.cross_entropy(reference(x), y).backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)

    trained, expected = model.state_dict(), reference.state_dict()
    assert trained.keys() == expected.keys()
    assert all(torch.equal(trained[k], expected[k]) for k in trained)
    assert trainer.state.step == 2 * 40  # ceil(1257 / 32) batches per epoch
    # The check is not vacuous: the weights moved away from their initial values.
    assert not torch.equal(trained["layers.1.weight"], digits_mlp().state_dict()["layers.1.weight"])


def test_val_accuracy_and_loss_equal_sklearn_and_a_sample_weighted_mean_over_the_same_data():
    data = Digits("val")  # 270 samples: batches of 64 leave a last batch of 14
    model = digits_mlp()
    trainer = Trainer(
        model=model,
        loss=F.cross_entropy,
        val_data=data,
        metrics={"acc": MulticlassAccuracy(num_classes=10, average="micro")},
        settings={"batch_size": 64, "device": "cpu"},
    )
    # A few steps of training by hand, so accuracy is neither chance nor perfect.
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    for _ in range(20):
        F.cross_entropy(model(data.inputs), data.labels).backward()
        optimizer.step()
        optimizer.zero_grad()

    values = trainer.validate()

    model.eval()
    with torch.no_grad():
        logits = model(data.inputs)
        batch_losses = [F.cross_entropy(logits[i : i + 64], data.labels[i : i + 64]).item() for i in range(0, 270, 64)]
    accuracy = accuracy_score(data.labels.numpy(), logits.argmax(dim=1).numpy())
    weighted = sum(loss * len(data.labels[i * 64 : i * 64 + 64]) for i, loss in enumerate(batch_losses)) / 270
    assert sorted(values) == ["val/acc", "val/loss"]
    assert 0.2 < accuracy < 0.95
    assert values["val/acc"] == pytest.approx(accuracy, abs=1e-6)
    assert values["val/loss"] == pytest.approx(weighted, abs=1e-6)
    assert abs(sum(batch_losses) / len(batch_losses) - weighted) > 1e-4  # the plain mean of batch means differs
    assert trainer.state.metrics == values


def test_validation_runs_in_eval_mode_without_gradients_and_restores_train_mode():
    seen = {}

    class Look(Callback):
        def on_eval_batch_end(self, state):
            seen["training"] = state.models["model"].training
            seen["inference"] = torch.is_inference_mode_enabled()
            seen["requires_grad"] = state.outputs["loss"].requires_grad

    model = nn.Sequential(nn.Linear(3, 4), nn.Dropout(0.5), nn.Linear(4, 2))
    x = torch.randn(8, 3)
    data = TensorDataset(x, torch.zeros(8, dtype=torch.long))
    trainer = Trainer(model=model, loss=F.cross_entropy, val_data=data, callbacks=[Look()], settings={"device": "cpu"})
    model.train()
    trainer.validate()
    assert seen == {"training": False, "inference": True, "requires_grad": False}
    assert model.training


def test_predict_returns_the_named_output_for_every_sample_in_order():
    torch.manual_seed(0)
    model = nn.Linear(3, 2)
    x = torch.randn(10, 3)
    trainer = Trainer(model=model, settings={"batch_size": 4, "device": "cpu"})
    with torch.no_grad():
        expected = model(x)
    assert torch.equal(trainer.predict(TensorDataset(x)), expected)


def test_an_unknown_setting_fails_naming_it():
    with pytest.raises(TypeError, match=r"unknown TrainerConfig setting\(s\): \['max_epoch'\]"):
        Trainer(model=nn.Linear(3, 2), settings={"max_epoch": 3})


def test_fit_without_train_data_fails():
    optimizer = functools.partial(torch.optim.SGD, lr=0.1)
    trainer = Trainer(model=nn.Linear(3, 2), loss=F.cross_entropy, optimizer=optimizer, settings={"device": "cpu"})
    with pytest.raises(ValueError, match=r"fit\(\) needs train_data"):
        trainer.fit()


# -- no host sync in the hot path ---------------------------------------------

SYNCING = ("item", "tolist", "__bool__", "__float__", "__int__", "cpu")


class SyncCounter:
    """Counts calls of the tensor methods that copy a value to the host, while ``active``."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch):
        self.active = False
        self.calls: dict[str, int] = {name: 0 for name in SYNCING}
        for name in SYNCING:
            monkeypatch.setattr(torch.Tensor, name, self._counting(name, getattr(torch.Tensor, name)))

    def _counting(self, name, original):
        def counted(tensor, *args, **kwargs):
            if self.active:
                self.calls[name] += 1
            return original(tensor, *args, **kwargs)

        return counted


class Window(Callback):
    """Turns the counter on at batch 2's start (runs first) ..."""

    order = -10_000

    def __init__(self, counter: SyncCounter):
        self.counter, self.windows = counter, 0

    def on_batch_start(self, state):
        if state.batch_index == 1:
            self.counter.active = True
            self.windows += 1


class WindowEnd(Callback):
    """... and off at the end of the second-to-last batch (runs last)."""

    order = 10_000

    def __init__(self, counter: SyncCounter, batches: int):
        self.counter, self.batches, self.counted_batches = counter, batches, 0

    def on_batch_end(self, state):
        if self.counter.active:
            self.counted_batches += 1
        if state.batch_index == self.batches - 1:  # batch_index already counts the batch that just ended
            self.counter.active = False


def sync_run(monkeypatch, tmp_path, *extra: Callback) -> tuple[SyncCounter, Window, WindowEnd]:
    torch.manual_seed(0)
    x = torch.randn(48, 3)
    data = TensorDataset(x, (x.sum(dim=1) > 0).long())
    counter = SyncCounter(monkeypatch)
    start, end = Window(counter), WindowEnd(counter, batches=6)
    trainer = Trainer(
        model=nn.Sequential(nn.Linear(3, 8), nn.ReLU(), nn.Dropout(0.1), nn.Linear(8, 2)),
        loss=F.cross_entropy,
        # SGD: torch's CPU Adam reads its step count with .item() inside optimizer.step().
        optimizer=functools.partial(torch.optim.SGD, lr=0.1, momentum=0.9),
        train_data=data,
        val_data=data,
        metrics={"acc": MulticlassAccuracy(num_classes=2, average="micro")},
        callbacks=[start, end, History(log_every_n_steps=1), Checkpoint(every_n_steps=None), *extra],
        settings={"max_epochs": 2, "batch_size": 8, "device": "cpu"},
        run_dir=tmp_path,
    )
    trainer.fit()
    return counter, start, end


def test_no_tensor_reaches_the_host_between_the_second_and_the_second_to_last_batch(monkeypatch, tmp_path):
    counter, start, end = sync_run(monkeypatch, tmp_path)
    assert (start.windows, end.counted_batches) == (2, 8)  # 2 epochs x batches 2..5 of 6
    assert counter.calls == {name: 0 for name in SYNCING}
    assert (tmp_path / "metrics.csv").read_text().count("\n") == 1 + 2 * 6 + 2  # the history still logged every step


def test_the_sync_counter_sees_each_kind_of_host_sync(monkeypatch, tmp_path):
    class Syncs(Callback):
        def on_after_forward(self, state):
            loss = state.outputs["loss"].detach()
            loss.item(), loss.reshape(1).tolist(), bool(loss > 0), float(loss), int(loss), loss.cpu()

    counter, _, _ = sync_run(monkeypatch, tmp_path, Syncs())
    assert counter.calls == {name: 8 for name in SYNCING}
