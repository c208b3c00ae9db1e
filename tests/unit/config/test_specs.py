"""The graph sections' entries are typed specs: checked once against their declaration, defaults filled once.

Torch-free: everything here is ``load_config`` without ``check``, what ``expresso config`` runs.
"""

from __future__ import annotations

import textwrap

import pytest

from expresso import load_config
from expresso.config import ConfigError
from expresso.config.specs import EarlyStoppingSpec, NodeSpec, PipelineSpec, StageSpec, UpdateSpec

# An encoder and two heads: two pipelines and two stages name each other, and each section has an entry to get wrong.
BASE = """\
dataset: {class: expresso.data.Digits}
models:
  encoder: {class: expresso.models.Dense, in_features: 64, out_features: 8}
  head: {class: expresso.models.Dense, in_features: 8, out_features: 10}
graph:
  - {model: encoder, inputs: [x], outputs: [z]}
  - {model: head, inputs: [z], outputs: [y_hat]}
losses:
  cls: {class: torch.nn.CrossEntropyLoss}
metrics:
  acc: {class: torchmetrics.classification.MulticlassAccuracy, num_classes: 10}
optimizers:
  enc: {class: torch.optim.SGD, models: [encoder], lr: 0.1}
pipelines:
  main: {}
"""


@pytest.fixture
def load(write, in_tmp):
    def run(text: str):
        write({"base.yaml": BASE, "exp.yaml": "extends: base.yaml\n" + textwrap.dedent(text)})
        return load_config("exp.yaml")

    return run


@pytest.fixture
def problems(load):
    def run(text: str) -> list[str]:
        with pytest.raises(ConfigError) as info:
            load(text)
        return [str(problem) for problem in info.value.problems]

    return run


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (  # was a TypeError out of load_config (iterating 3)
            "pipelines:\n  main: {updates: 3}\n",
            ["exp.yaml: pipelines.main.updates: received 3 (int), expected a list of updates"],
        ),
        (  # passed --check; `expresso train` then failed building the stage
            "stages:\n  - {early_stopping: {patience: -1, mode: up}}\n",
            [
                "exp.yaml: stages.0.early_stopping.patience: received -1, expected a value >= 0",
                "exp.yaml: stages.0.early_stopping.mode: received 'up' (str), expected one of 'min', 'max'",
            ],
        ),
        (  # passed --check; `expresso train` then failed iterating the hooks
            "graph:\n  - {model: encoder, inputs: [x], outputs: [z], detach: 3}\n"
            "  - {model: head, inputs: [z], outputs: [y_hat], forward_hooks: 4}\n",
            [
                "exp.yaml: graph.0.detach: received 3 (int), expected true, false or a list of input names",
                "exp.yaml: graph.1.forward_hooks: received 4 (int), expected a list of components (mappings with a 'class' key)",
            ],
        ),
        (
            "pipelines:\n  main: {updates: [{optimizers: [encoder]}, {losses: [cls], name: 2}]}\n",
            [
                "exp.yaml: pipelines.main.updates.0: missing 'losses': the loss terms this update backpropagates",
                "exp.yaml: pipelines.main.updates.1.name: received 2 (int), expected a string",
                "exp.yaml: pipelines.main.updates.0.optimizers: unknown optimizer 'encoder'; expected one of ['enc'];"
                " did you mean 'enc'?",
            ],
        ),
        (
            "stages:\n  - {early_stopping: {monitor: val/acc, patiense: 2}}\n",
            [
                "exp.yaml: stages.0.early_stopping.patiense: unknown key of an early_stopping"
                " (it takes: monitor, mode, patience, min_delta); did you mean 'patience'?"
            ],
        ),
    ],
    ids=["updates-not-a-list", "early-stopping-values", "node-detach-and-hooks", "updates", "early-stopping-key"],
)
def test_an_entry_is_checked_against_its_spec_when_the_config_loads(problems, text, expected):
    assert problems(text) == expected


def test_unknown_keys_list_what_the_spec_declares(problems):
    assert problems("pipelines:\n  main: {metric: [acc]}\n") == [
        "exp.yaml: pipelines.main.metric: unknown key of a pipeline (it takes: dataset, losses, metrics, nodes, batch,"
        " updates); did you mean 'metrics'?"
    ]


def test_the_general_form_holds_typed_entries_with_every_default_filled(load):
    wiring = load("pipelines:\n  main: {}\n  extra: {metrics: [acc], updates: [{losses: [cls]}]}\n").wiring
    assert [spec for _, spec in wiring.graph] == [
        NodeSpec(name="encoder", model="encoder", inputs=["x"], outputs=["z"]),
        NodeSpec(name="head", model="head", inputs=["z"], outputs=["y_hat"]),
    ]
    assert {name: spec for name, (_, spec) in wiring.pipelines.items()} == {
        "main": PipelineSpec(dataset="dataset", metrics=[]),  # several pipelines: each names its metrics
        "extra": PipelineSpec(dataset="dataset", metrics=["acc"], updates=[UpdateSpec(losses=["cls"])]),
    }
    assert [spec for _, spec in wiring.stages] == [StageSpec(name="main", interleave="round_robin")]
    assert wiring.losses["cls"][1]["inputs"] == ["y_hat", "y"]


def test_a_plain_config_is_one_node_one_pipeline_with_every_metric_and_one_stage(write, in_tmp):
    write(
        {
            "exp.yaml": "model: {class: expresso.models.MLP}\nloss: {class: torch.nn.CrossEntropyLoss}\n"
            "metrics: {acc: {class: torchmetrics.classification.MulticlassAccuracy, num_classes: 10}}\n"
            "stages: [{epochs: 2, early_stopping: {patience: 1}}]\n"
        }
    )
    wiring = load_config("exp.yaml").wiring
    assert [(path, spec) for path, spec in wiring.graph] == [(("model",), NodeSpec(name="model", model="model"))]
    assert {name: spec for name, (_, spec) in wiring.pipelines.items()} == {"main": PipelineSpec(metrics=["acc"])}
    assert [spec for _, spec in wiring.stages] == [StageSpec(epochs=2, early_stopping=EarlyStoppingSpec(patience=1))]
    assert wiring.losses["loss"][1]["inputs"] == ["y_hat", "y"]
