import logging

import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

from expresso.callbacks import Checkpoint, NaNGuard, NonFiniteLossError
from expresso.engine import Callback, Graph, LossTerm, Node, OptimizerSpec, Trainer

POISONED_SAMPLE = 9  # batches of 4, no shuffling: the third batch of every epoch


def data_with_a_nan() -> TensorDataset:
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(16, 3, generator=generator)
    y = (x.sum(dim=1) > 0).long()
    x[POISONED_SAMPLE, 0] = float("nan")
    return TensorDataset(x, y)


def weights_finite(trainer) -> bool:
    return all(torch.isfinite(p).all() for p in trainer.graph.models["model"].parameters())


def test_without_the_guard_a_nan_batch_poisons_the_weights(make_trainer):
    # The default epoch check (engine/finite.py) is off: nothing else stops the run.
    trainer = make_trainer(data=data_with_a_nan(), val=False, max_epochs=1, stop_on_non_finite=False)
    trainer.fit()
    assert not weights_finite(trainer)


def test_stop_raises_naming_the_step_and_the_tensor(make_trainer):
    trainer = make_trainer(NaNGuard(), data=data_with_a_nan(), val=False)
    with pytest.raises(NonFiniteLossError) as caught:
        trainer.fit()
    assert (
        str(caught.value)
        == "non-finite loss 'loss' at step 3 (epoch 1, batch 3); NaNGuard(action='stop') ended the fit;"
        " no checkpoint was written"
    )
    assert isinstance(caught.value, RuntimeError)
    assert trainer.state.step == 2 and weights_finite(trainer)


def test_skip_drops_the_batch_with_a_warning_and_trains_on(make_trainer, caplog):
    trainer = make_trainer(NaNGuard(action="skip"), data=data_with_a_nan(), val=False, max_epochs=2)
    with caplog.at_level(logging.INFO, logger="expresso"):
        metrics = trainer.fit()
    assert [(r.levelname, r.getMessage()) for r in caplog.records] == [
        ("WARNING", "NaNGuard: non-finite loss 'loss' at step 3 (epoch 1, batch 3); skipping the batch"),
        ("WARNING", "NaNGuard: non-finite loss 'loss' at step 6 (epoch 2, batch 3); skipping the batch"),
    ]
    assert trainer.state.step == 6  # 2 epochs x (4 batches - 1 skipped)
    assert weights_finite(trainer) and torch.isfinite(torch.tensor(metrics["train/loss"]))


def test_a_non_finite_loss_term_is_named():
    # The auxiliary term is the log of the third feature, negative in the poisoned sample only.
    generator = torch.Generator().manual_seed(0)
    x = torch.rand(16, 3, generator=generator) + 0.1
    x[POISONED_SAMPLE, 2] = -1.0
    torch.manual_seed(0)
    model = nn.Linear(3, 2)
    graph = Graph(
        models={"model": model},
        nodes=[Node("model")],
        losses=[
            LossTerm("main", nn.functional.cross_entropy),
            LossTerm("aux", lambda x: x[:, 2].log().mean(), inputs=("x",)),
        ],
        optimizers={"optimizer": OptimizerSpec(torch.optim.SGD(model.parameters(), lr=0.1), ["model"])},
    )
    trainer = Trainer(
        graph=graph,
        train_data=TensorDataset(x, torch.zeros(16, dtype=torch.long)),
        callbacks=[NaNGuard()],
        settings={"max_epochs": 1, "batch_size": 4},
        dataloader={"shuffle": False},
    )
    with pytest.raises(NonFiniteLossError, match=r"^non-finite loss 'loss/aux', 'loss' at step 3 \(epoch 1, batch 3\)"):
        trainer.fit()


class NaNGradientAt(nn.Module):
    """A linear layer whose gradient turns NaN at one training forward; its loss stays finite."""

    def __init__(self, call: int):
        super().__init__()
        self.linear, self.call, self.calls = nn.Linear(3, 2), call, 0

    def forward(self, x):
        out = self.linear(x)
        if self.training:
            self.calls += 1
            if self.calls == self.call:
                out.register_hook(lambda grad: grad * float("nan"))
        return out


def test_check_gradients_names_the_parameter(make_trainer):
    trainer = make_trainer(NaNGuard(check_gradients=True), model=NaNGradientAt(call=2), val=False)
    with pytest.raises(NonFiniteLossError) as caught:
        trainer.fit()
    assert str(caught.value) == (
        "non-finite gradient of model.linear.weight, model.linear.bias at step 2 (epoch 1, batch 2); NaNGuard(action='stop') ended the fit;"
        " no checkpoint was written"
    )


def test_skipping_a_nan_gradient_keeps_the_weights_finite(make_trainer, caplog):
    unguarded = make_trainer(model=NaNGradientAt(call=2), val=False, max_epochs=1, stop_on_non_finite=False)
    unguarded.fit()
    assert not weights_finite(unguarded)  # the loss is finite: only the gradient check can catch it
    guarded = make_trainer(
        NaNGuard(action="skip", check_gradients=True), model=NaNGradientAt(call=2), val=False, max_epochs=1
    )
    with caplog.at_level(logging.WARNING, logger="expresso"):
        guarded.fit()
    assert weights_finite(guarded) and guarded.state.step == 3
    assert caplog.messages == [
        "NaNGuard: non-finite gradient of model.linear.weight, model.linear.bias at step 2 (epoch 1, batch 2); skipping the batch"
    ]


def test_an_unknown_action_is_refused():
    with pytest.raises(
        ValueError,
        match=r"^Invalid value for argument `action`. Received: action='ignore'; expected one of \('stop', 'skip_step', 'rollback'\)$",
    ):
        NaNGuard(action="ignore")


class PoisonOnce(Callback):
    """At the end of step ``at`` (once), the model's weights become NaN: the next forward's loss is NaN."""

    def __init__(self, at: int):
        self.at, self.done = at, False

    def on_batch_end(self, state):
        if state.step == self.at and not self.done:
            self.done = True
            with torch.no_grad():
                state.models["model"].weight.fill_(float("nan"))


def test_rollback_reloads_the_last_sound_checkpoint_lowers_the_learning_rate_and_trains_on(
    make_trainer, tmp_path, caplog
):
    folder = tmp_path / "checkpoints"
    guard = NaNGuard(action="rollback", checkpoint=str(folder / "last.ckpt"), lr_factor=0.5)
    trainer = make_trainer(
        Checkpoint(monitor=None, dirpath=str(folder), every_n_steps=2), PoisonOnce(5), guard, max_epochs=3, val=False
    )
    with caplog.at_level(logging.WARNING, logger="expresso"):
        trainer.fit()
    assert (
        weights_finite(trainer) and trainer.state.step == 12
    )  # 4 batches an epoch; steps 5 and 6 were trained again, from step 4's checkpoint
    assert guard.rollbacks == 1
    assert trainer.graph.optimizers["optimizer"].optimizer.param_groups[0]["lr"] == 0.05
    assert caplog.messages == [
        f"NaNGuard: non-finite loss 'loss' at step 6 (epoch 2, batch 2); rolling back to {folder / 'last.ckpt'} with the learning rates x0.5"
    ]


def test_rollback_gives_up_after_max_rollbacks(make_trainer, tmp_path):
    folder = tmp_path / "checkpoints"
    guard = NaNGuard(action="rollback", checkpoint=str(folder / "last.ckpt"), max_rollbacks=0)
    trainer = make_trainer(
        Checkpoint(monitor=None, dirpath=str(folder), every_n_steps=2), PoisonOnce(5), guard, max_epochs=3, val=False
    )
    with pytest.raises(NonFiniteLossError, match=r"after 0 rollback\(s\); NaNGuard\(max_rollbacks=0\) ended the fit"):
        trainer.fit()
