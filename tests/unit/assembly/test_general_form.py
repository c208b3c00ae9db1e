"""The general form of the graph sections: computed once per config, and the one source the built objects come from."""

from __future__ import annotations

import dataclasses
import inspect

from expresso import load_config
from expresso.assembly import build_trainer, check
from expresso.callbacks import EarlyStopping
from expresso.config import wiring
from expresso.config.specs import EarlyStoppingSpec

STAGES = """\
dataset: {class: expresso.data.Digits}
model: {class: expresso.models.MLP, num_classes: 10}
loss: {class: torch.nn.CrossEntropyLoss}
optimizer: {class: torch.optim.SGD, lr: 0.1}
trainer: {device: cpu}
stages:
  - {name: warmup, epochs: 1, early_stopping: {}}
  - {name: rest, early_stopping: {monitor: train/loss, patience: 0}}
"""


def test_a_stages_early_stopping_defaults_are_the_callbacks_own():
    """The spec declares the config's defaults; a stage builds the callback from them, so they must not drift apart."""
    parameters = inspect.signature(EarlyStopping).parameters
    assert {f.name: f.default for f in dataclasses.fields(EarlyStoppingSpec)} == {
        name: parameter.default for name, parameter in parameters.items()
    }


def test_the_general_form_is_computed_once_for_the_check_and_the_build(write, in_tmp, monkeypatch):
    """It was computed three times per `expresso train`: by the structure check, the wiring check and the build."""
    write({"exp.yaml": STAGES})
    computed = []
    sections = wiring._sections
    monkeypatch.setattr(wiring, "_sections", lambda tree: computed.append(tree) or sections(tree))
    config = check(load_config("exp.yaml", check=True))  # what `expresso train` runs before building
    build_trainer(config, None)
    assert len(computed) == 1


def test_each_stage_gets_an_early_stopping_built_from_its_spec_an_empty_one_with_the_defaults(write, in_tmp):
    write({"exp.yaml": STAGES})
    warmup, rest = build_trainer(load_config("exp.yaml", check=True), None).stages
    assert (warmup.name, rest.name) == ("warmup", "rest")
    assert [(s.monitor, s.mode, s.patience, s.min_delta) for s in (warmup.early_stopping, rest.early_stopping)] == [
        ("val/loss", "min", 3, 0.0),  # `{}` asked for early stopping: it was silently none
        ("train/loss", "min", 0, 0.0),
    ]
