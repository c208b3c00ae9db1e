"""Function slots: what the engine calls later with its own arguments (graph functions and hooks, a batch adapter, ``until``, a metric).

One rule (config/instantiate.py ``instantiate_function``): a class is built
from its config keys and its instance is called; a function is bound to its
keys and called with the runtime's arguments after them. ``--check`` follows
the same rule.
"""

from __future__ import annotations

import functools
import textwrap
from types import SimpleNamespace

import pytest
import torch

from expresso import ConfigError, load_config
from expresso.assembly import build_trainer
from expresso.config.instantiate import instantiate_function
from expresso.engine.batch_mean import BatchMean

SLOTS = """\
import torch


class AccuracyReached:
    def __init__(self, threshold, monitor="val/acc"):
        self.threshold, self.monitor = threshold, monitor

    def __call__(self, state):
        return state.metrics[self.monitor] >= self.threshold


def reached(state, threshold):
    return state.metrics["val/acc"] >= threshold


class Scale:
    def __init__(self, factor):
        self.factor = factor

    def __call__(self, node, outputs):
        return {name: value * self.factor for name, value in outputs.items()}


class Pair:
    def __init__(self, names=("x", "y")):
        self.names = names

    def __call__(self, batch):
        return dict(zip(self.names, batch))


class Plain:
    def __init__(self, threshold):
        self.threshold = threshold


def accuracy(output, target):
    return (output.argmax(dim=1) == target).float().mean()


def top_k(output, target, num_classes, k=2):
    assert output.shape[1] == num_classes
    return (output.topk(k, dim=1).indices == target[:, None]).any(dim=1).float().mean()


def make_until(threshold):
    return lambda state: state.metrics["val/acc"] >= threshold


class Refuses(AccuracyReached):
    def __init__(self, threshold):
        raise ValueError(f"threshold {threshold} is not in [0, 1]")
"""
BASE = """\
dataset: {class: expresso.data.Digits}
task: {num_classes: 10, target: digit}
model: {class: expresso.models.MLP}
loss: {class: torch.nn.CrossEntropyLoss}
optimizer: {class: torch.optim.SGD, lr: 0.1}
trainer: {device: cpu, batch_size: 128, limit_batches: 2}
"""


@pytest.fixture
def project(write, in_tmp, monkeypatch):
    write({"my/__init__.py": "", "my/slots.py": SLOTS, "base.yaml": BASE})
    monkeypatch.syspath_prepend(str(in_tmp))
    return in_tmp


def problems(write, text: str) -> list[str]:
    write({"exp.yaml": "extends: base.yaml\n" + textwrap.dedent(text)})
    with pytest.raises(ConfigError) as info:
        load_config("exp.yaml", check=True)
    return [str(problem) for problem in info.value.problems]


def checked(write, text: str):
    write({"exp.yaml": "extends: base.yaml\n" + textwrap.dedent(text)})
    return load_config("exp.yaml", check=True)


# -- building ------------------------------------------------------------------------------------------
def test_a_class_is_built_from_its_keys_and_its_instance_is_what_gets_called(project):
    until = instantiate_function({"class": "my.slots.AccuracyReached", "threshold": 0.9})
    assert (type(until).__name__, until.threshold) == ("AccuracyReached", 0.9)
    assert [until(SimpleNamespace(metrics={"val/acc": v})) for v in (0.89, 0.9)] == [False, True]


def test_a_function_is_bound_to_its_keys_and_called_with_the_runtime_arguments_first(project):
    until = instantiate_function({"class": "my.slots.reached", "threshold": 0.9})
    assert isinstance(until, functools.partial) and until.keywords == {"threshold": 0.9}
    assert [until(SimpleNamespace(metrics={"val/acc": v})) for v in (0.89, 0.9)] == [False, True]


def test_an_explicit_partial_decides_instead(project):
    factory_built = instantiate_function({"class": "my.slots.make_until", "threshold": 0.5, "_partial_": False})
    assert factory_built(SimpleNamespace(metrics={"val/acc": 0.6})) is True
    class_bound = instantiate_function({"class": "my.slots.Pair", "_partial_": True})
    assert isinstance(class_bound, functools.partial) and class_bound.func.__name__ == "Pair"


def test_a_class_whose_instances_cannot_be_called_is_refused_when_built(project):
    with pytest.raises(TypeError) as info:
        instantiate_function({"class": "my.slots.Plain", "threshold": 0.9})
    assert (
        str(info.value)
        == "my.slots.Plain built a Plain, which cannot be called (a class used as a function needs a __call__ method)"
    )


def test_every_function_slot_builds_a_class_once_and_calls_it(project, write):
    config = checked(
        write,
        """\
        graph:
          - {model: model, inputs: [x], outputs: [y_hat], forward_hooks: [{class: my.slots.Scale, factor: 2.0}]}
          - {function: {class: torch.nn.Softmax, dim: 1}, inputs: [y_hat], outputs: [p]}
        pipelines:
          main: {batch: {class: my.slots.Pair, names: [x, y]}, nodes: [model, Softmax]}
        metrics:
          acc: {class: my.slots.accuracy}
        stages:
          - {epochs: 4, until: {class: my.slots.AccuracyReached, threshold: 0.0}}
        """,
    )
    trainer = build_trainer(config, None, training=False)
    graph, pipeline = trainer.graph, trainer.pipelines["main"]
    assert type(pipeline.batch).__name__ == "Pair" and type(trainer.stages[0].until).__name__ == "AccuracyReached"
    x = torch.rand(5, 1, 8, 8)
    tensors = graph.forward(pipeline.batch((x, torch.zeros(5))))
    expected = graph.models["model"](x) * 2.0
    assert torch.equal(tensors["y_hat"], expected) and torch.equal(tensors["p"], torch.softmax(expected, dim=1))
    trainer.fit()
    assert (trainer.state.epoch, trainer.state.step) == (
        1,
        2,
    )  # until(state) with threshold 0 ended the 4-epoch stage after one epoch


def test_a_function_slot_class_that_rejects_its_keys_is_one_error_naming_the_key(project, write):
    config = checked(write, "stages:\n  - {until: {class: my.slots.Refuses, threshold: 2}}\n")
    with pytest.raises(ConfigError) as info:
        build_trainer(config, None)
    assert [str(p) for p in info.value.problems] == [
        "exp.yaml: stages.0.until: building it raised ValueError: threshold 2 is not in [0, 1]"
    ]


# -- metrics -------------------------------------------------------------------------------------------
def test_a_metric_function_or_callable_class_is_wrapped_and_a_torchmetrics_metric_is_not(project, write):
    config = checked(
        write,
        """\
        metrics:
          acc: {class: my.slots.accuracy}
          top2: {class: my.slots.top_k}
          module: {class: torch.nn.L1Loss}
          micro: {class: torchmetrics.classification.MulticlassAccuracy, average: micro}
        """,
    )
    metrics = build_trainer(config, None, training=False).pipelines["main"].metrics
    assert {name: type(metric).__name__ for name, metric in metrics.items()} == {
        "acc": "BatchMean",
        "top2": "BatchMean",
        "module": "BatchMean",
        "micro": "MulticlassAccuracy",
    }
    assert metrics["top2"].fn.keywords == {"num_classes": 10}  # the task value reached the function's own parameter
    assert isinstance(metrics["module"].fn, torch.nn.L1Loss) and isinstance(metrics["module"], BatchMean)


# -- --check -------------------------------------------------------------------------------------------
def test_task_values_reach_a_metric_functions_parameters_but_never_its_prediction_and_target(project, write):
    config = checked(write, "metrics:\n  acc: {class: my.slots.accuracy}\n  top2: {class: my.slots.top_k}\n")
    assert config["metrics"] == {
        "acc": {"class": "my.slots.accuracy"},
        "top2": {"class": "my.slots.top_k", "num_classes": 10},
    }


def test_functions_in_function_slots_need_only_their_configured_keys(project, write):
    config = checked(
        write,
        """\
        graph:
          - {model: model, inputs: [x], outputs: [y_hat], forward_hooks: [{class: my.slots.Scale, factor: 2.0}]}
        metrics:
          acc: {class: my.slots.accuracy}
        stages:
          - {until: {class: my.slots.reached, threshold: 0.9}}
        """,
    )
    assert config["stages"] == [{"until": {"class": "my.slots.reached", "threshold": 0.9}}]


def test_a_class_without_call_is_refused_in_every_function_slot(project, write):
    found = problems(
        write,
        """\
        graph:
          - {model: model, inputs: [x], outputs: [y_hat], forward_hooks: [{class: my.slots.Plain, threshold: 1}]}
          - {function: {class: my.slots.Plain, threshold: 1}, name: plain, inputs: [y_hat], outputs: [p]}
        pipelines:
          main: {batch: {class: my.slots.Plain, threshold: 1}}
        metrics:
          acc: {class: my.slots.Plain, threshold: 1}
        stages:
          - {until: {class: my.slots.Plain, threshold: 1}}
        """,
    )
    tail = "; give a function, or a class whose instances are callable"
    assert found == [
        f"exp.yaml: graph.0.forward_hooks.0.class: my.slots.Plain is a class without __call__, but the graph calls it as hook(node_name, outputs){tail}",
        f"exp.yaml: graph.1.function.class: my.slots.Plain is a class without __call__, but the graph calls it with the node's input tensors{tail}",
        f"exp.yaml: pipelines.main.batch.class: my.slots.Plain is a class without __call__, but the pipeline calls it with each batch{tail}",
        "exp.yaml: metrics.acc.class: my.slots.Plain is a class without __call__, but a metric that is not a torchmetrics Metric "
        f"is called as metric(prediction, target) on every batch{tail}",
        f"exp.yaml: stages.0.until.class: my.slots.Plain is a class without __call__, but the stage calls it as until(state) after every epoch{tail}",
    ]


def test_a_class_in_a_function_slot_is_checked_for_its_constructors_required_arguments(project, write):
    assert problems(write, "stages:\n  - {until: {class: my.slots.AccuracyReached, monitor: val/loss}}\n") == [
        "exp.yaml: stages.0.until: missing required argument 'threshold' of my.slots.AccuracyReached; set stages.0.until.threshold"
    ]


def test_setting_an_argument_the_engine_passes_to_a_function_is_refused(project, write):
    assert problems(write, "stages:\n  - {until: {class: my.slots.reached, state: 1, threshold: 0.9}}\n") == [
        "exp.yaml: stages.0.until.state: 'state' is an argument of my.slots.reached that the engine passes "
        "(the stage calls it as until(state) after every epoch); it cannot be set in the config"
    ]
