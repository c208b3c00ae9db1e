"""From a config to a Trainer: injection by name, the step override, schedules, default callbacks."""

from __future__ import annotations

import logging

import pytest
import torch

from expresso import load_config
from expresso.assembly import build_trainer
from expresso.callbacks import Checkpoint, History, LearningCurves, LRScheduler, ModelSummary, Progress

USER = '''
import torch
from expresso import Callback


class Seen(Callback):
    """Asks for every injectable name."""
    instances = []

    def __init__(self, model, task, run_dir, logger, tag="x"):
        self.model, self.task, self.run_dir, self.logger, self.tag = model, task, run_dir, logger, tag
        Seen.instances.append(self)


def streamed(split="train"):
    """A dataset given as a ready loader over an iterable dataset: its number of batches is unknown."""

    class Stream(torch.utils.data.IterableDataset):
        def __iter__(self):
            return iter([(torch.zeros(64), torch.tensor(0))])

    return torch.utils.data.DataLoader(Stream(), batch_size=1)


class Doubled:
    """A step that doubles the logits before the loss, and asks for the task."""

    def __init__(self, task):
        self.scale = task["scale"]

    def __call__(self, graph, tensors):
        tensors["y_hat"] = graph.models["model"](tensors["x"]) * self.scale
        tensors["loss"] = torch.nn.functional.cross_entropy(tensors["y_hat"], tensors["y"])
        return tensors
'''

BASE = """
dataset: {class: expresso.data.Digits}
task: {num_classes: 10, scale: 2.0}
model: {class: expresso.models.MLP, hidden: [16]}
loss: {class: torch.nn.CrossEntropyLoss}
optimizer: {class: torch.optim.SGD, lr: 0.5}
trainer: {max_epochs: 2, batch_size: 256, limit_batches: 2}
"""


@pytest.fixture
def project(tmp_path, monkeypatch):
    (tmp_path / "my_project").mkdir()
    (tmp_path / "my_project" / "user.py").write_text(USER)
    (tmp_path / "configs").mkdir()
    monkeypatch.chdir(tmp_path)
    return tmp_path


def build(project, extra: str = "", overrides=()):
    (project / "configs" / "exp.yaml").write_text(BASE + extra)
    config = load_config(project / "configs" / "exp.yaml", list(overrides), check=True)
    return build_trainer(config, project / "run")


def test_a_callback_asking_for_model_task_run_dir_and_logger_gets_them(project):
    trainer = build(project, "callbacks: [{class: my_project.user.Seen, tag: y}]\n")
    [seen] = [cb for cb in trainer.callbacks.callbacks if type(cb).__name__ == "Seen"]
    assert seen.model is trainer.graph.models["model"]
    assert seen.task == {"num_classes": 10, "scale": 2.0}
    assert seen.run_dir == project / "run"
    assert seen.logger is logging.getLogger("expresso")
    assert seen.tag == "y"


def test_the_step_override_replaces_forward_and_loss(project):
    trainer = build(project, "step: {class: my_project.user.Doubled}\n")
    x, y = trainer.loader("val").dataset[0]
    tensors = trainer.step_fn(trainer.graph, {"x": x[None], "y": y[None]})
    with torch.no_grad():
        assert torch.equal(tensors["y_hat"], trainer.graph.models["model"](x[None]) * 2.0)


def test_datasets_are_built_once_per_split_with_the_task_target(project):
    trainer = build(project, overrides=["+task.target=parity"])
    assert [trainer.loader(s).dataset.split for s in ("train", "val", "test")] == ["train", "val", "test"]
    assert all(trainer.loader(s).dataset.target == "parity" for s in ("train", "val", "test"))


def test_a_trainer_that_does_not_train_has_the_models_and_pipelines_but_no_optimizer_or_callback(project):
    """eval and predict: the first optimizer built would import torch._dynamo, over a second of each command."""
    build(project)
    config = load_config(project / "configs" / "exp.yaml", check=True)
    trainer = build_trainer(config, project / "run", training=False)
    assert list(trainer.graph.models) == ["model"] and trainer.graph.optimizers == {}
    assert list(trainer.pipelines) == ["main"] and trainer.callbacks.callbacks == []


def test_default_callbacks_and_a_configured_one_replacing_its_default(project):
    trainer = build(project)
    assert {type(cb) for cb in trainer.callbacks.callbacks} == {
        ModelSummary,
        Progress,
        Checkpoint,
        History,
        LearningCurves,
    }
    trainer = build(project, "callbacks: [{class: expresso.callbacks.Checkpoint, every_n_steps: 3}]\n")
    [checkpoint] = [cb for cb in trainer.callbacks.callbacks if isinstance(cb, Checkpoint)]
    assert checkpoint.every_n_steps == 3


def test_no_history_without_the_csv_logger(project):
    trainer = build(project, "loggers: []\n")
    assert not any(isinstance(cb, History) for cb in trainer.callbacks.callbacks)


def test_scheduler_section_steps_per_interval_and_applies_a_list_in_order(project):
    extra = """scheduler:
  - {class: expresso.schedules.Piecewise, values: {0: 0.5, 1: 0.1}}
  - {class: torch.optim.lr_scheduler.StepLR, step_size: 1, gamma: 0.5, interval: step}
"""
    trainer = build(project, extra)
    schedules = {cb.interval: cb for cb in trainer.callbacks.callbacks if isinstance(cb, LRScheduler)}
    assert set(schedules) == {"epoch", "step"}
    trainer.fit()
    # epoch 0 starts at 0.5 and halves after each of its 2 steps; epoch 1's piecewise value 0.1 then halves twice
    assert trainer.graph.optimizers["optimizer"].optimizer.param_groups[0]["lr"] == pytest.approx(0.1 * 0.25)


def test_a_bad_scheduler_interval_is_a_config_error_naming_the_entry(project):
    from expresso import ConfigError

    with pytest.raises(ConfigError, match=r"scheduler.0.interval: received 'batch'"):
        build(project, "scheduler: [{class: torch.optim.lr_scheduler.StepLR, step_size: 1, interval: batch}]\n")


def test_training_without_model_dataset_optimizer_or_loss_names_each_missing_section(project):
    from expresso import ConfigError

    (project / "configs" / "bare.yaml").write_text("task: {num_classes: 10}\n")
    config = load_config(project / "configs" / "bare.yaml", check=True)
    with pytest.raises(ConfigError) as info:
        build_trainer(config, project / "run")
    assert [(p.key, p.message) for p in info.value.problems] == [
        (key, "missing: training needs this section") for key in ("model", "dataset", "optimizer", "loss")
    ]
    assert not (project / "run").exists()


def test_a_fraction_of_batches_with_data_of_unknown_length_is_a_config_error_naming_the_setting(project):
    from expresso import ConfigError

    with pytest.raises(ConfigError) as info:
        build(project, "", ["dataset.class=my_project.user.streamed", "trainer.limit_batches=0.5"])
    assert [str(problem) for problem in info.value.problems] == [
        "command line: trainer.limit_batches: received 0.5, a fraction of each split's batches, but the train split has no length "
        "(an iterable dataset); expected a number of batches (an integer)"
    ]
    assert not (project / "run").exists()
