"""The graph sections from config: every wiring mistake is one error naming the file, the key, the node and the tensor."""

from __future__ import annotations

import textwrap

import pytest
import torch

from expresso import load_config
from expresso.assembly import build_trainer, check
from expresso.config import ConfigError

# An encoder and two heads on digits: the smallest graph with a shared model, two optimizers, two pipelines.
BASE = """\
dataset: {class: expresso.data.Digits}
models:
  encoder: {class: expresso.models.Dense, in_features: 64, out_features: 8}
  head: {class: expresso.models.Dense, in_features: 8, out_features: 10}
graph:
  - {model: encoder, inputs: [x], outputs: [z]}
  - {model: head, inputs: [z], outputs: [y_hat]}
losses:
  cls: {class: torch.nn.CrossEntropyLoss, inputs: [y_hat, y]}
optimizers:
  enc: {class: torch.optim.SGD, models: [encoder], lr: 0.1}
  head: {class: torch.optim.SGD, models: [head], lr: 0.2}
"""


@pytest.fixture
def problems(write, in_tmp):
    """Write ``exp.yaml`` (BASE with ``text`` merged over it) and return what loading it with --check reports."""

    def run(text: str, base: str = BASE) -> list[str]:
        write({"base.yaml": base, "exp.yaml": "extends: base.yaml\n" + textwrap.dedent(text)})
        with pytest.raises(ConfigError) as info:
            check(load_config("exp.yaml", check=True))
        return [str(problem) for problem in info.value.problems]

    return run


def test_a_node_reading_an_unknown_tensor_is_found_at_check_time_naming_file_node_and_tensor(problems):
    assert problems(
        "graph:\n  - {model: encoder, inputs: [x], outputs: [z]}\n  - {model: head, inputs: [zz], outputs: [y_hat]}\n"
    ) == [
        "exp.yaml: graph.1: graph node 1 (head) reads tensor 'zz', which neither the batch ['x', 'y'] of pipeline 'main' nor any node writes; did you mean 'z'?"
    ]


def test_a_loss_reading_an_unknown_tensor_names_the_loss_and_its_file(problems):
    assert problems("losses:\n  cls: {inputs: [y_hat, label]}\n") == [
        "exp.yaml: losses.cls: loss term 'cls' reads tensor 'label', which neither the batch ['x', 'y'] of pipeline 'main' nor any node writes"
    ]


def test_a_cycle_a_double_write_and_an_unused_model_each_name_the_node(problems):
    cycle = "graph:\n  - {model: encoder, inputs: [y_hat], outputs: [z]}\n  - {model: head, inputs: [z], outputs: [y_hat]}\n"
    assert problems(cycle) == [
        "exp.yaml: graph.0: graph nodes form a cycle: encoder reads 'y_hat' from head, head reads 'z' from encoder"
    ]
    twice = "graph:\n  - {model: encoder, inputs: [x], outputs: [z]}\n  - {model: head, inputs: [z], outputs: [z]}\n"
    assert problems(twice) == ["exp.yaml: graph.1: graph node 1 (head) writes tensor 'z', already written by encoder"]
    unused = "models:\n  spare: {class: expresso.models.Dense, in_features: 2, out_features: 2}\n"
    assert problems(unused) == [
        "exp.yaml: models.spare: model(s) ['spare'] are in no graph node: add a node for each, or remove them"
    ]


def test_names_that_point_nowhere_are_reported_with_a_suggestion(problems):
    assert problems(
        "graph:\n  - {model: encodr, inputs: [x], outputs: [z]}\n  - {model: head, inputs: [z], outputs: [y_hat]}\n"
    ) == [
        "exp.yaml: graph.0.model: unknown model 'encodr'; expected one of ['encoder', 'head']; did you mean 'encoder'?"
    ]
    assert problems("pipelines:\n  main: {losses: [cl]}\n") == [
        "exp.yaml: pipelines.main.losses: unknown loss term 'cl'; expected one of ['cls']; did you mean 'cls'?"
    ]
    assert problems("pipelines:\n  main: {}\nstages:\n  - {train: [mian]}\n") == [
        "exp.yaml: stages.0.train: unknown pipeline 'mian'; expected one of ['main']; did you mean 'main'?"
    ]
    assert problems("pipelines:\n  main: {}\nstages:\n  - {frozen: [encoder], epoch: 2}\n") == [
        "exp.yaml: stages.0.epoch: unknown key of a stage (it takes: name, train, val, frozen, epochs, early_stopping, until, interleave); did you mean 'epochs'?"
    ]
    assert problems("optimizers:\n  enc: {models: [encoder], param_groups: [{models: [haed], lr: 0.1}]}\n") == [
        "exp.yaml: optimizers.enc.param_groups.0.models: unknown model 'haed'; expected one of ['encoder', 'head']; did you mean 'head'?"
    ]


def test_several_models_need_a_graph_and_a_section_comes_in_one_form(problems):
    assert problems("graph: []\n") == [
        "base.yaml: models: several models need a 'graph': the nodes that say which tensors each model reads and writes"
    ]
    assert problems("model: {class: expresso.models.MLP, num_classes: 10}\n") == [
        "exp.yaml: model: give either 'model' or 'models', not both"
    ]


def test_optimizers_get_their_models_parameter_groups_clipping_and_own_schedulers(write, in_tmp):
    write(
        {
            "base.yaml": BASE,
            "exp.yaml": "extends: base.yaml\n"
            + textwrap.dedent("""\
        optimizers:
          enc: {param_groups: [{models: [encoder], lr: 0.01}], clip_grad_norm: 0.5,
                scheduler: {class: torch.optim.lr_scheduler.StepLR, step_size: 1, gamma: 0.5}}
        trainer: {device: cpu}
        """),
        }
    )
    trainer = build_trainer(load_config("exp.yaml", check=True), None, training=True)
    enc, head = trainer.graph.optimizers["enc"], trainer.graph.optimizers["head"]
    assert [g["lr"] for g in enc.optimizer.param_groups] == [0.01]  # the group's own rate
    assert enc.optimizer.param_groups[0]["params"] == list(trainer.graph.models["encoder"].parameters())
    assert head.optimizer.param_groups[0]["params"] == list(trainer.graph.models["head"].parameters())
    assert (enc.clip_grad_norm, head.clip_grad_norm) == (0.5, None)
    schedulers = [cb for cb in trainer.callbacks.callbacks if type(cb).__name__ == "LRScheduler"]
    assert [cb.state_key for cb in schedulers] == ["LRScheduler[optimizer=enc]"]


def test_clipping_bounds_the_gradient_norm_the_optimizer_steps_with():
    from expresso.engine import OptimizerSpec

    weight = torch.nn.Parameter(torch.zeros(3))
    weight.grad = torch.tensor([3.0, 4.0, 0.0])  # norm 5
    spec = OptimizerSpec(torch.optim.SGD([weight], lr=1.0), ["m"], clip_grad_norm=1.0)
    spec.clip()
    spec.optimizer.step()
    assert torch.allclose(weight.detach(), torch.tensor([-0.6, -0.8, 0.0]))


def test_function_nodes_hooks_and_a_stage_condition_come_from_the_config(write, in_tmp):
    write(
        {
            "base.yaml": BASE,
            "hooks.py": "def scale(node, outputs, factor):\n    return {k: v * factor for k, v in outputs.items()}\n\n"
            "def after_one_epoch(state):\n    return state.stage_epoch == 0\n",
            "exp.yaml": "extends: base.yaml\n"
            + textwrap.dedent("""\
            graph:
              - {model: encoder, inputs: [x], outputs: [z]}
              - {model: head, inputs: [z], outputs: [y_hat], forward_hooks: [{class: hooks.py:scale, factor: 2.0}]}
              - {function: {class: torch.argmax, dim: 1}, inputs: [y_hat], outputs: [pred]}
            pipelines:
              main: {nodes: [encoder, head, argmax]}
            stages:
              - {epochs: 5, until: {class: hooks.py:after_one_epoch}}
            trainer: {device: cpu, limit_batches: 2}
            """),
        }
    )
    trainer = build_trainer(load_config("exp.yaml", check=True), None, training=False)
    graph = trainer.graph
    x = torch.rand(3, 1, 8, 8)
    tensors = graph.forward({"x": x})
    expected = graph.models["head"](graph.models["encoder"](x)) * 2.0
    assert torch.equal(tensors["y_hat"], expected) and torch.equal(tensors["pred"], expected.argmax(dim=1))
    assert [node.name for node in graph.ordered] == ["encoder", "head", "argmax"]
    trainer.fit()
    assert (trainer.state.epoch, trainer.state.step) == (1, 2)  # `until` ended the 5-epoch stage after its first epoch
