import copy
import functools
import inspect

import pytest
import torch
from torch import nn
from torch.optim.lr_scheduler import LambdaLR, ReduceLROnPlateau, StepLR
from torch.utils.data import TensorDataset

from expresso.callbacks import LRScheduler
from expresso.engine import Callback, Event, Graph, LossTerm, Node, OptimizerSpec, Trainer
from expresso.engine.callback import Dispatcher
from expresso.schedules import Piecewise


def first_batch_lrs(recorder, batches_per_epoch=4):
    return recorder.batch_lrs[::batches_per_epoch]


@pytest.mark.parametrize("keys", [int, str], ids=["int keys", "str keys (JSON)"])
def test_piecewise_sets_the_listed_rate_when_its_epoch_begins(make_trainer, recorder, keys):
    schedule = LRScheduler(functools.partial(Piecewise, values={keys(0): 0.1, keys(2): 0.05, keys(4): 0.01}))
    make_trainer(schedule, recorder, max_epochs=6, lr=1.0).fit()
    assert first_batch_lrs(recorder) == [0.1, 0.1, 0.05, 0.05, 0.01, 0.01]
    assert [m["lr"] for m in recorder.epoch_metrics] == [0.1, 0.1, 0.05, 0.05, 0.01, 0.01]


def test_piecewise_without_epoch_zero_keeps_the_optimizer_rate_until_its_first_key(make_trainer, recorder):
    make_trainer(LRScheduler(functools.partial(Piecewise, values={2: 0.5})), recorder, max_epochs=3, lr=0.1).fit()
    assert first_batch_lrs(recorder) == [0.1, 0.1, 0.5]


def test_a_torch_scheduler_after_piecewise_shapes_the_rate_the_table_set(make_trainer, recorder):
    schedule = LRScheduler(
        [functools.partial(Piecewise, values={0: 1.0, 3: 0.2}), functools.partial(StepLR, step_size=2, gamma=0.5)]
    )
    make_trainer(schedule, recorder, max_epochs=6).fit()
    # StepLR halves after epochs 1 and 3; the table sets 0.2 when epoch 3 begins.
    assert first_batch_lrs(recorder) == [1.0, 1.0, 0.5, 0.2, 0.1, 0.1]


def test_step_interval_steps_after_every_optimizer_step(make_trainer, recorder):
    schedule = LRScheduler(functools.partial(LambdaLR, lr_lambda=lambda step: 1.0 / (1 + step)), interval="step")
    make_trainer(schedule, recorder, max_epochs=2, lr=0.1).fit()
    assert recorder.batch_lrs == [0.1 * (1.0 / (1 + step)) for step in range(8)]
    # After a step, "lr" is the rate of the next one.
    assert [m["lr"] for m in recorder.epoch_metrics] == [0.1 * (1.0 / 5), 0.1 * (1.0 / 9)]


def test_only_a_per_step_schedule_is_called_per_batch():
    optimizer = torch.optim.SGD(nn.Linear(1, 1).parameters(), lr=0.1)
    per_epoch = LRScheduler(StepLR(optimizer, step_size=1))
    per_step = LRScheduler(functools.partial(StepLR, step_size=1), "step")
    assert isinstance(per_step, LRScheduler) and isinstance(per_epoch, LRScheduler)
    assert Dispatcher([per_epoch]).handlers(Event.BATCH_END, "fit") == []
    assert len(Dispatcher([per_step]).handlers(Event.BATCH_END, "fit")) == 1


class FeedValLoss(Callback):
    order = -1

    def __init__(self, values):
        self.values = values

    def on_validation_end(self, state):
        state.metrics["val/loss"] = self.values[state.epoch]


def test_reduce_on_plateau_gets_the_monitored_value(make_trainer, recorder):
    plateau = functools.partial(ReduceLROnPlateau, patience=0, factor=0.5)
    make_trainer(FeedValLoss([1.0, 1.0, 0.5, 0.6, 0.6]), LRScheduler(plateau), recorder, max_epochs=5, lr=0.1).fit()
    assert first_batch_lrs(recorder) == [0.1, 0.1, 0.05, 0.05, 0.025]


def test_reduce_on_plateau_with_a_misspelt_monitor_fails_naming_the_metrics(make_trainer):
    trainer = make_trainer(LRScheduler(functools.partial(ReduceLROnPlateau), monitor="val/acc"))
    with pytest.raises(KeyError) as caught:
        trainer.fit()
    assert (
        caught.value.args[0]
        == "LRScheduler (ReduceLROnPlateau) monitors 'val/acc', which is not among the metrics ['lr', 'train/loss', 'val/loss']"
    )


def test_reduce_on_plateau_needs_the_epoch_interval():
    with pytest.raises(ValueError, match="ReduceLROnPlateau steps on an epoch metric: use interval='epoch'"):
        LRScheduler(functools.partial(ReduceLROnPlateau), interval="step")


def test_a_resumed_epoch_schedule_continues_exactly(make_trainer, recorder, save_at):
    def schedule():
        return LRScheduler(
            [functools.partial(Piecewise, values={0: 1.0, 3: 0.2}), functools.partial(StepLR, step_size=2, gamma=0.5)]
        )

    whole = make_trainer(schedule(), recorder, save_at(epoch=1), max_epochs=6)
    whole.fit()
    resumed_recorder, resumed_schedule = type(recorder)(), schedule()
    resumed = make_trainer(resumed_schedule, resumed_recorder, max_epochs=6)
    resumed.fit(resume_from=save_at().path)
    assert first_batch_lrs(resumed_recorder) == first_batch_lrs(recorder)[2:] == [0.5, 0.2, 0.1, 0.1]
    assert resumed_schedule.state_dict() == whole.callbacks.callbacks[0].state_dict()
    assert torch.equal(resumed.graph.models["model"].weight, whole.graph.models["model"].weight)


def test_a_step_schedule_resumed_mid_epoch_continues_exactly(make_trainer, recorder, save_at):
    def schedule():
        return LRScheduler(functools.partial(LambdaLR, lr_lambda=lambda step: 1.0 / (1 + step)), interval="step")

    whole = make_trainer(schedule(), recorder, save_at(step=6), max_epochs=3)
    whole.fit()
    resumed_recorder = type(recorder)()
    resumed = make_trainer(schedule(), resumed_recorder, max_epochs=3)
    resumed.fit(resume_from=save_at().path)
    # Building LambdaLR anew sets lr = 0.1 * lambda(0); the resumed run must keep the checkpoint's rate.
    assert resumed_recorder.batch_lrs == recorder.batch_lrs[6:]
    assert torch.equal(resumed.graph.models["model"].weight, whole.graph.models["model"].weight)


def two_optimizer_trainer(*callbacks):
    torch.manual_seed(0)
    models = {"a": nn.Linear(3, 3), "b": nn.Linear(3, 2)}
    graph = Graph(
        models=models,
        nodes=[Node("a", ("x",), ("h",)), Node("b", ("h",), ("y_hat",))],
        losses=[LossTerm("loss", nn.functional.cross_entropy)],
        optimizers={name: OptimizerSpec(torch.optim.SGD(m.parameters(), lr=0.1), [name]) for name, m in models.items()},
    )
    data = TensorDataset(torch.randn(16, 3), torch.randint(0, 2, (16,)))
    return Trainer(graph=graph, train_data=data, callbacks=callbacks, settings={"max_epochs": 2, "batch_size": 4})


def test_with_several_optimizers_the_choice_is_required_and_named(recorder):
    with pytest.raises(ValueError, match=r"several optimizers; choose one with optimizer=NAME among \['a', 'b'\]"):
        two_optimizer_trainer(LRScheduler(functools.partial(StepLR, step_size=1, gamma=0.5))).fit()
    two_optimizer_trainer(LRScheduler(functools.partial(StepLR, step_size=1, gamma=0.5), optimizer="b"), recorder).fit()
    assert [m["lr/b"] for m in recorder.epoch_metrics] == [0.1, 0.05]
    assert "lr" not in recorder.epoch_metrics[0]


def test_a_built_scheduler_must_drive_the_trainers_optimizer(make_trainer):
    foreign = torch.optim.SGD(nn.Linear(3, 2).parameters(), lr=0.1)
    with pytest.raises(ValueError, match="a built StepLR drives an optimizer that is not the trainer's 'optimizer'"):
        make_trainer(LRScheduler(StepLR(foreign, step_size=1))).fit()


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({-1: 0.1}, "Piecewise `values` keys must be epochs (integers >= 0). Received: -1: 0.1"),
        ({"ten": 0.1}, "Piecewise `values` keys must be epochs (integers >= 0). Received: 'ten': 0.1"),
        ({1.5: 0.1}, "Piecewise `values` keys must be epochs (integers >= 0). Received: 1.5: 0.1"),
        ({0: 0.1, "0": 0.2}, "Piecewise `values` lists epoch 0 twice. Received: '0': 0.2"),
        ({0: 0}, "Piecewise `values` must be positive numbers. Received: 0: 0"),
        ({3: float("inf")}, "Piecewise `values` must be positive numbers. Received: 3: inf"),
        (
            {0: "1e-3"},
            "Piecewise `values` must be positive numbers; epoch 0 has the string '1e-3' (YAML reads 1e-3 as a string: write 1.0e-3)",
        ),
    ],
)
def test_piecewise_refuses_a_bad_entry_naming_it(values, message):
    optimizer = torch.optim.SGD(nn.Linear(1, 1).parameters(), lr=0.1)
    with pytest.raises(ValueError) as caught:
        Piecewise(optimizer, values)
    assert str(caught.value) == message
    assert optimizer.param_groups[0]["lr"] == 0.1


def test_piecewise_checkpoints_its_position_not_its_table():
    optimizer = torch.optim.SGD(nn.Linear(1, 1).parameters(), lr=0.1)
    schedule = Piecewise(optimizer, {0: 0.5, 1: 0.25})
    optimizer.step()
    schedule.step()
    state = schedule.state_dict()
    assert "values" not in state and state["last_epoch"] == 1
    other = Piecewise(torch.optim.SGD(nn.Linear(1, 1).parameters(), lr=0.1), {0: 0.5, 1: 0.3})
    other.load_state_dict(state)
    assert other.values == {0: 0.5, 1: 0.3} and other.last_epoch == 1


def test_the_config_check_sees_the_real_parameters_and_copies_keep_the_interval():
    assert list(inspect.signature(LRScheduler).parameters) == ["scheduler", "interval", "optimizer", "monitor"]
    per_step = copy.deepcopy(LRScheduler(functools.partial(StepLR, step_size=1), interval="step"))
    assert per_step.interval == "step" and len(Dispatcher([per_step]).handlers(Event.BATCH_END, "fit")) == 1


def test_two_schedules_of_one_run_need_distinct_checkpoint_keys():
    epoch, step = (
        LRScheduler(functools.partial(StepLR, step_size=1)),
        LRScheduler(functools.partial(StepLR, step_size=1), "step"),
    )
    assert (epoch.state_key, step.state_key) == ("LRScheduler", "LRScheduler[interval=step]")
    assert LRScheduler(functools.partial(StepLR, step_size=1), optimizer="b").state_key == "LRScheduler[optimizer=b]"


# -- rebuilt on resume (expresso resume with a changed schedule or rate) -----------------------------------------


@pytest.mark.parametrize("interval", ["epoch", "step"])
def test_a_rebuilt_schedule_resumes_at_the_rate_a_run_with_the_new_settings_has_at_that_position(
    make_trainer, recorder, save_at, interval
):
    cosine = functools.partial(torch.optim.lr_scheduler.CosineAnnealingLR, T_max=4 if interval == "epoch" else 16)
    make_trainer(LRScheduler(cosine, interval=interval), save_at(epoch=1), max_epochs=2, lr=0.1).fit()

    longer = functools.partial(torch.optim.lr_scheduler.CosineAnnealingLR, T_max=6 if interval == "epoch" else 24)
    schedule = LRScheduler([functools.partial(Piecewise, values={0: 0.05}), longer], interval=interval)
    schedule.rebuild = True
    resumed = make_trainer(schedule, recorder, max_epochs=4, lr=0.05)
    resumed.load_checkpoint(save_at().path)
    for group in resumed.graph.optimizers[
        "optimizer"
    ].optimizer.param_groups:  # what expresso resume does for a changed rate
        group.pop("initial_lr", None)
        group["lr"] = 0.05
    resumed.fit()

    fresh_recorder = type(recorder)()  # the new settings from the start
    fresh_schedule = LRScheduler([functools.partial(Piecewise, values={0: 0.05}), longer], interval=interval)
    make_trainer(fresh_schedule, fresh_recorder, max_epochs=4, lr=0.05).fit()
    assert recorder.batch_lrs == fresh_recorder.batch_lrs[8:]  # epochs 3 and 4, 4 batches each


def test_a_rebuilt_plateau_keeps_what_it_counted_and_takes_its_new_patience(make_trainer, recorder, save_at):
    class Worse(Callback):
        def on_validation_end(self, state):
            state.metrics["val/loss"] = float(state.epoch)  # rises every epoch

    make_trainer(
        Worse(), LRScheduler(functools.partial(ReduceLROnPlateau, patience=5)), save_at(epoch=1), max_epochs=2, lr=0.1
    ).fit()
    schedule = LRScheduler(functools.partial(ReduceLROnPlateau, patience=1, factor=0.5))
    schedule.rebuild = True
    resumed = make_trainer(Worse(), schedule, recorder, max_epochs=4, lr=0.1)
    resumed.load_checkpoint(save_at().path)
    resumed.fit()
    # Two bad epochs counted before the resume: the third (epoch 3) exceeds patience 1, so epoch 4 trains at half.
    assert first_batch_lrs(recorder) == [0.1, 0.05]
