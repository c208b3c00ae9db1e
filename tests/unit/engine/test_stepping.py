"""engine/stepping.py through the Trainer: precision, accumulation, the clipping shorthand, channels_last.

Each outcome is compared with a hand-written loop over the same data and
the same initial weights (or with one step over the concatenated batch).
"""

from __future__ import annotations

import copy
import functools

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from expresso.engine import Callback, Trainer

SAMPLES, FEATURES, CLASSES = 80, 8, 3


def data(samples: int = SAMPLES) -> TensorDataset:
    generator = torch.Generator().manual_seed(1)
    return TensorDataset(
        torch.randn(samples, FEATURES, generator=generator), torch.randint(0, CLASSES, (samples,), generator=generator)
    )


def mlp() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(FEATURES, 16), nn.ReLU(), nn.Linear(16, CLASSES))  # no dropout


class Steps(Callback):
    """Counts the step ends the loop fires, with the batch index each came after."""

    def __init__(self):
        self.ends: list[tuple[int, int, int]] = []  # (epoch, batch_index, step)

    def on_batch_end(self, state):
        self.ends.append((state.epoch, state.batch_index, state.step))


def fit(model: nn.Module, optimizer=None, dataset=None, callbacks=(), **settings) -> Trainer:
    settings = {"max_epochs": 1, "batch_size": 8, **settings}
    trainer = Trainer(
        model=model,
        loss=nn.CrossEntropyLoss(),
        optimizer=optimizer or functools.partial(torch.optim.SGD, lr=0.5),
        train_data=dataset if dataset is not None else data(),
        settings=settings,
        dataloader={"shuffle": False},
        callbacks=callbacks,
    )
    trainer.fit()
    return trainer


def weights(trainer: Trainer) -> dict[str, torch.Tensor]:
    return trainer.graph.models["model"].state_dict()


# -- accumulation ---------------------------------------------------------------------------------------
def test_accumulating_k_batches_of_b_steps_as_one_batch_of_k_times_b():
    # 80 samples: 10 batches of 8 with k=5 is 2 steps, as 2 batches of 40; tolerance: float32 sums in another order.
    accumulated = fit(mlp(), accumulate_grad_batches=5, batch_size=8)
    whole = fit(mlp(), batch_size=40)
    assert accumulated.state.step == whole.state.step == 2
    for name, value in weights(whole).items():
        torch.testing.assert_close(weights(accumulated)[name], value, rtol=0, atol=1e-6)
    assert not torch.equal(weights(whole)["0.weight"], weights(fit(mlp(), max_steps=1, batch_size=40))["0.weight"])


def test_an_epoch_steps_every_k_batches_and_after_its_last_and_each_step_ends_once():
    # 10 batches, k=4: steps after batches 4, 8 and 10 (the last window of 2 still divides by 4, as Lightning does).
    steps = Steps()
    trainer = fit(mlp(), accumulate_grad_batches=4, max_epochs=2, callbacks=[steps])
    assert steps.ends == [(0, 4, 1), (0, 8, 2), (0, 10, 3), (1, 4, 4), (1, 8, 5), (1, 10, 6)]
    model, loader = mlp(), DataLoader(data(), batch_size=8)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    for _ in range(2):
        for index, (x, y) in enumerate(loader):
            (nn.functional.cross_entropy(model(x), y) / 4).backward()
            if (index + 1) % 4 == 0 or index + 1 == len(loader):
                optimizer.step()
                optimizer.zero_grad()
    for name, value in model.state_dict().items():
        assert torch.equal(weights(trainer)[name], value), name


def test_a_loader_without_a_length_steps_its_last_window_at_the_epoch_end():
    class Stream(torch.utils.data.IterableDataset):  # 10 batches of 8, no __len__
        def __iter__(self):
            x, y = data().tensors
            return iter(zip(x.split(8), y.split(8)))

    steps = Steps()
    trainer = fit(mlp(), dataset=DataLoader(Stream(), batch_size=None), accumulate_grad_batches=4, callbacks=[steps])
    assert steps.ends == [(0, 4, 1), (0, 8, 2), (0, 10, 3)]
    known = fit(mlp(), accumulate_grad_batches=4)  # the same batches from a loader that knows its length
    for name, value in weights(known).items():
        assert torch.equal(weights(trainer)[name], value), name


def test_max_steps_counts_optimizer_steps_not_batches():
    trainer = fit(mlp(), accumulate_grad_batches=3, max_steps=2, max_epochs=5)
    assert (trainer.state.step, trainer.state.epoch, trainer.state.batch_index) == (
        2,
        1,
        0,
    )  # the epoch ended after batch 6
    assert trainer.state.metrics["train/loss"] > 0


def test_a_per_step_schedule_steps_once_per_optimizer_step():
    from expresso.callbacks import LRScheduler

    schedule = LRScheduler(functools.partial(torch.optim.lr_scheduler.StepLR, step_size=1, gamma=0.5), interval="step")
    trainer = fit(mlp(), accumulate_grad_batches=4, callbacks=[schedule])  # 10 batches: 3 optimizer steps
    assert trainer.state.step == 3
    assert trainer.graph.optimizers["optimizer"].optimizer.param_groups[0]["lr"] == 0.5 * 0.5**3


def test_a_checkpoint_inside_a_window_is_refused(tmp_path):
    class SaveMidWindow(Callback):
        def on_after_backward(self, state):
            state.save_checkpoint(tmp_path / "mid.ckpt")

    with pytest.raises(RuntimeError, match="inside a window of accumulated gradients"):
        fit(mlp(), accumulate_grad_batches=2, callbacks=[SaveMidWindow()])
    assert not (tmp_path / "mid.ckpt").exists()


@pytest.mark.parametrize("precision", ["bf16-mixed", "16-mixed"])
def test_a_resume_from_a_step_checkpoint_of_an_accumulating_run_ends_as_the_uninterrupted_run(tmp_path, precision):
    class SaveAt(Callback):
        def on_batch_checkpoint(self, state):
            if state.step == 2:
                state.save_checkpoint(tmp_path / "step2.ckpt")

    through = fit(mlp(), accumulate_grad_batches=3, max_epochs=2, callbacks=[SaveAt()], precision=precision)
    resumed = Trainer(
        model=mlp(),
        loss=nn.CrossEntropyLoss(),
        optimizer=functools.partial(torch.optim.SGD, lr=0.5),
        train_data=data(),
        settings={"max_epochs": 2, "batch_size": 8, "accumulate_grad_batches": 3, "precision": precision},
        dataloader={"shuffle": False},
    )
    resumed.fit(resume_from=tmp_path / "step2.ckpt")
    assert resumed.state.step == through.state.step == 8  # 4 windows per epoch (3, 3, 3, 1 batches)
    for name, value in weights(through).items():
        assert torch.equal(weights(resumed)[name], value), name
    if precision == "16-mixed":
        assert resumed.stepper.scaler.state_dict() == through.stepper.scaler.state_dict()
    else:
        assert resumed.stepper.scaler is None


def test_accumulation_is_refused_for_a_pipeline_of_several_updates():
    from expresso.engine.stepping import accumulation_problem

    assert accumulation_problem(2, {"gan": 2, "plain": 1}) == (
        "received 2, but pipeline(s) ['gan'] make several updates per batch, each stepping its optimizers before the "
        "next: accumulation needs one update per batch (use 1)"
    )
    assert accumulation_problem(1, {"gan": 2}) is None


# -- precision ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("precision", ["bf16-mixed", "16-mixed"])
def test_a_mixed_precision_fit_is_the_hand_loop_under_autocast(precision):
    trainer = fit(mlp(), precision=precision, max_epochs=2)
    dtype = torch.bfloat16 if precision == "bf16-mixed" else torch.float16
    model = mlp()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    scaler = torch.amp.GradScaler("cpu", enabled=dtype is torch.float16)
    for _ in range(2):
        for x, y in DataLoader(data(), batch_size=8):
            with torch.autocast("cpu", dtype=dtype):
                loss = nn.functional.cross_entropy(model(x), y)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            optimizer.zero_grad()
    for name, value in model.state_dict().items():
        assert value.dtype is torch.float32
        assert torch.equal(weights(trainer)[name], value), name
    assert trainer.state.outputs["y_hat"].dtype is dtype  # the forward ran in the mixed dtype
    assert trainer.stepper.precision == precision


def test_16_mixed_steps_an_optimizer_without_gradients_plainly():
    # an optimizer over a model whose weights get no gradient (requires_grad off): GradScaler.step fails on
    # such an optimizer (no inf checks recorded), so it steps plainly
    from expresso.engine.graph import Graph, LossTerm, Node, OptimizerSpec

    model, idle = mlp(), nn.Linear(CLASSES, 1).requires_grad_(False)
    graph = Graph(
        models={"model": model, "idle": idle},
        nodes=[Node("model"), Node("idle", inputs=["y_hat"], outputs=["score"], detach=True)],
        losses=[
            LossTerm("loss", nn.CrossEntropyLoss()),
            LossTerm("score", lambda score: score.mean(), inputs=["score"], weight=0.0),
        ],
        optimizers={
            "main": OptimizerSpec(torch.optim.SGD(model.parameters(), lr=0.5), ["model"]),
            "idle": OptimizerSpec(torch.optim.SGD(idle.parameters(), lr=0.5), ["idle"]),
        },
    )
    before = copy.deepcopy(idle.state_dict())
    trainer = Trainer(
        graph=graph, train_data=data(), settings={"max_epochs": 1, "batch_size": 8, "precision": "16-mixed"}
    )
    trainer.fit()
    assert trainer.state.step == 10
    assert all(torch.equal(idle.state_dict()[name], value) for name, value in before.items())


def test_validation_runs_under_autocast_too():
    trainer = Trainer(
        model=mlp(),
        loss=nn.CrossEntropyLoss(),
        optimizer=functools.partial(torch.optim.SGD, lr=0.5),
        train_data=data(),
        val_data=data(16),
        settings={"max_epochs": 1, "batch_size": 8, "precision": "bf16-mixed"},
    )
    trainer.validate()
    assert trainer.state.outputs["y_hat"].dtype is torch.bfloat16


@pytest.mark.parametrize("given", [32, "32", "32-true"])
def test_32_and_its_aliases_are_full_precision(given):
    trainer = fit(mlp(), precision=given, max_steps=1)
    assert trainer.stepper.precision == "32-true" and trainer.stepper.scaler is None
    assert trainer.state.outputs["y_hat"].dtype is torch.float32


def test_a_mixed_precision_on_a_device_autocast_does_not_run_on_is_refused():
    from expresso.engine.stepping import precision_problem

    meta = torch.device("meta")  # a real device type torch.autocast does not support
    assert (
        precision_problem("bf16-mixed", meta)
        == "received 'bf16-mixed', but torch.autocast does not run on meta; use 32-true"
    )
    assert precision_problem(32, meta) is None
    assert precision_problem("16-mixed", torch.device("cpu")) is None  # torch 2.13 autocasts float16 on CPUs


def test_a_precision_not_offered_is_refused_naming_what_is():
    with pytest.raises(ValueError) as info:
        fit(mlp(), precision="bf16-true")
    assert str(info.value) == (
        "trainer.precision: received 'bf16-true', expected one of 32-true (or 32), bf16-mixed, 16-mixed"
    )


# -- clipping -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("algorithm", ["norm", "value"])
def test_gradient_clip_val_clips_as_the_hand_loop(algorithm):
    trainer = fit(mlp(), gradient_clip_val=0.05, gradient_clip_algorithm=algorithm)
    model = mlp()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    clip = nn.utils.clip_grad_norm_ if algorithm == "norm" else nn.utils.clip_grad_value_
    for x, y in DataLoader(data(), batch_size=8):
        nn.functional.cross_entropy(model(x), y).backward()
        clip(list(model.parameters()), 0.05)
        optimizer.step()
        optimizer.zero_grad()
    for name, value in model.state_dict().items():
        assert torch.equal(weights(trainer)[name], value), name
    assert not torch.equal(weights(trainer)["0.weight"], weights(fit(mlp()))["0.weight"])  # the clip did clip


def test_16_mixed_unscales_the_gradients_before_clipping_them():
    trainer = fit(mlp(), gradient_clip_val=0.05, precision="16-mixed")
    model = mlp()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    scaler = torch.amp.GradScaler("cpu")
    for x, y in DataLoader(data(), batch_size=8):
        with torch.autocast("cpu", dtype=torch.float16):
            loss = nn.functional.cross_entropy(model(x), y)
        scaler.scale(loss).backward()
        scaler.unscale_(optimizer)
        nn.utils.clip_grad_norm_(list(model.parameters()), 0.05)
        scaler.step(optimizer)
        scaler.update()
        optimizer.zero_grad()
    for name, value in model.state_dict().items():
        assert torch.equal(weights(trainer)[name], value), name


def test_the_clipping_shorthand_and_an_optimizers_own_clipping_are_refused_together():
    from expresso.engine.graph import Graph, OptimizerSpec
    from expresso.engine.stepping import clip_shorthand

    model = mlp()
    graph = Graph.single(model, nn.CrossEntropyLoss(), torch.optim.SGD(model.parameters(), lr=0.1))
    graph.optimizers["optimizer"] = OptimizerSpec(
        graph.optimizers["optimizer"].optimizer, ["model"], clip_grad_norm=1.0
    )
    with pytest.raises(ValueError) as info:
        clip_shorthand(graph, 0.5, "norm")
    assert str(info.value) == (
        "trainer.gradient_clip_val: received 0.5, but optimizers ['optimizer'] clip their own gradients "
        "(clip_grad_norm/clip_grad_value): give one of the two forms"
    )


# -- channels_last --------------------------------------------------------------------------------------
class Convolution(nn.Module):
    """A conv net that remembers whether its inputs came in channels_last."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(2, 4, 3)
        self.head = nn.Linear(4 * 6 * 6, CLASSES)
        self.inputs_channels_last: list[bool] = []

    def forward(self, x):
        self.inputs_channels_last.append(x.is_contiguous(memory_format=torch.channels_last))
        return self.head(torch.relu(self.conv(x)).flatten(1))


def test_channels_last_puts_the_models_and_4d_inputs_in_that_format_and_trains_the_same():
    generator = torch.Generator().manual_seed(2)
    images = TensorDataset(
        torch.randn(32, 2, 8, 8, generator=generator), torch.randint(0, CLASSES, (32,), generator=generator)
    )
    last = fit(Convolution(), dataset=images, channels_last=True)
    plain = fit(Convolution(), dataset=images)
    model = last.graph.models["model"]
    assert model.conv.weight.is_contiguous(memory_format=torch.channels_last)
    assert all(model.inputs_channels_last) and len(model.inputs_channels_last) == 4
    assert not any(plain.graph.models["model"].inputs_channels_last)
    for name, value in weights(plain).items():
        torch.testing.assert_close(weights(last)[name], value, rtol=0, atol=1e-6)


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ({"accumulate_grad_batches": 0}, "trainer.accumulate_grad_batches: received 0, expected an integer >= 1"),
        ({"gradient_clip_val": -1.0}, "trainer.gradient_clip_val: received -1.0, expected a number >= 0 or null"),
        ({"gradient_clip_algorithm": "max"}, "trainer.gradient_clip_algorithm: received 'max', expected norm or value"),
    ],
)
def test_the_python_api_refuses_step_settings_a_config_could_not_give(setting, message):
    with pytest.raises(ValueError) as info:
        fit(mlp(), **setting)
    assert str(info.value) == message
