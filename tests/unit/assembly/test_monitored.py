"""The metric names a config records, known before training, and the monitors checked against them at --check."""

from __future__ import annotations

import pytest

from expresso import ConfigError, load_config
from expresso.assembly import build_trainer, check
from expresso.assembly.monitored import produced_names
from expresso.assembly.placeholder import placeholder_plans

PLAIN = """\
dataset: {class: expresso.data.Digits}
model: {class: expresso.models.MLP, in_features: 64, num_classes: 10}
loss: {class: torch.nn.CrossEntropyLoss}
optimizer: {class: torch.optim.SGD, lr: 0.1}
metrics:
  acc: {class: torchmetrics.classification.MulticlassAccuracy, num_classes: 10, average: micro}
trainer: {monitor: val/acc, mode: max}
"""

# Two pipelines over one encoder, two optimizers, two loss terms in the first pipeline.
PIPELINES = """\
dataset: {class: expresso.data.Digits}
models:
  encoder: {class: expresso.models.Dense, in_features: 64, out_features: 8}
  head: {class: expresso.models.Dense, in_features: 8, out_features: 10}
  decoder: {class: expresso.models.Dense, in_features: 8, out_features: 64, out_shape: [1, 8, 8]}
graph:
  - {model: encoder, inputs: [x], outputs: [z]}
  - {model: head, inputs: [z], outputs: [y_hat]}
  - {model: decoder, inputs: [z], outputs: [x_hat]}
losses:
  cls: {class: torch.nn.CrossEntropyLoss, inputs: [y_hat, y]}
  rec: {class: torch.nn.MSELoss, inputs: [x_hat, x]}
optimizers:
  enc: {class: torch.optim.SGD, models: [encoder, decoder], lr: 0.1, scheduler: {class: torch.optim.lr_scheduler.StepLR, step_size: 1}}
  head: {class: torch.optim.SGD, models: [head], lr: 0.2}
metrics:
  acc: {class: torchmetrics.classification.MulticlassAccuracy, num_classes: 10, average: micro}
pipelines:
  both: {losses: [cls, rec], metrics: [acc]}
  rebuild: {losses: [rec]}
trainer: {monitor: val/both/acc, mode: max}
"""

PROVIDES = """\
from expresso import Callback


class F1(Callback):
    provides = ("val/f1_custom",)

    def on_validation_end(self, state):
        state.metrics["val/f1_custom"] = 0.5


def reached(state, monitor="val/loss", value=0.5):
    return state.metrics.get(monitor, 0.0) >= value
"""

SPLITS = ("train", "val", "test")


@pytest.fixture
def names(write, in_tmp):
    """The names the config (``text`` and overrides) records, computed as --check does."""

    def compute(text: str, *overrides: str):
        write({"exp.yaml": text, "my_project/__init__.py": "", "my_project/cb.py": PROVIDES})
        config = load_config("exp.yaml", list(overrides))
        return produced_names(config, config.wiring, placeholder_plans(config, config.wiring))

    return compute


@pytest.fixture
def problems(write, in_tmp):
    def found(text: str, *overrides: str) -> list[str]:
        write({"exp.yaml": text, "my_project/__init__.py": "", "my_project/cb.py": PROVIDES})
        with pytest.raises(ConfigError) as info:
            check(load_config("exp.yaml", list(overrides), check=True))
        return [str(problem) for problem in info.value.problems]

    return found


# -- the names -------------------------------------------------------------------------------------------------


def test_a_plain_config_records_the_loss_and_each_metric_in_every_split(names):
    assert names(PLAIN).names == {f"{split}/{key}" for split in SPLITS for key in ("loss", "acc")}


def test_a_scheduler_adds_lr(names):
    found = names(PLAIN, "scheduler={class: torch.optim.lr_scheduler.StepLR, step_size: 1}").names
    assert found == {"lr"} | {f"{split}/{key}" for split in SPLITS for key in ("loss", "acc")}


def test_several_pipelines_prefix_their_names_and_log_their_loss_terms_and_only_scheduled_optimizers_record_lr(names):
    expected = {"lr/enc"}
    for split in SPLITS:
        expected |= {f"{split}/both/loss", f"{split}/both/loss/cls", f"{split}/both/loss/rec", f"{split}/both/acc"}
        expected |= {f"{split}/rebuild/loss"}  # one term: no loss/rec of its own
    assert names(PIPELINES).names == expected


def test_several_loss_terms_in_one_pipeline_are_each_recorded(names):
    text = PIPELINES.replace(
        "pipelines:\n  both: {losses: [cls, rec], metrics: [acc]}\n  rebuild: {losses: [rec]}\n", ""
    )
    text = text.replace("val/both/acc", "val/acc")
    assert names(text).names == {"lr/enc"} | {
        f"{split}/{key}" for split in SPLITS for key in ("loss", "loss/cls", "loss/rec", "acc")
    }


def test_a_callback_class_adds_the_names_it_provides(names):
    assert "val/f1_custom" in names(PLAIN, "callbacks=[{class: my_project.cb.F1}]").names


def test_a_metric_item_is_known_but_not_a_loss_item(names):
    known = names(PLAIN)
    assert (known.knows("val/acc/3"), known.knows("val/loss/3"), known.knows("val/acc/x")) == (True, False, False)


def test_a_step_may_return_loss_terms_of_its_own(names):
    known = names(PLAIN, "step={class: my_project.cb.reached, _partial_: true}")
    assert (known.knows("train/loss/anything"), known.knows("val/other")) == (True, False)


@pytest.mark.parametrize("text", [PLAIN, PIPELINES], ids=["plain", "pipelines"])
def test_the_engine_reports_exactly_the_names_the_check_knows(names, text):
    """One definition of the keys (engine/metrics.py): what a built trainer reports is what --check accepts, lr aside."""
    known = names(text)
    trainer = build_trainer(load_config("exp.yaml", check=True), None)
    assert trainer.state.metric_names == {name for name in known.names if not name.startswith("lr")}


# -- the monitors ----------------------------------------------------------------------------------------------


def test_a_misspelt_trainer_monitor_is_refused_with_the_closest_name(problems):
    assert problems(PLAIN, "trainer.monitor=val/accuracy") == [
        "command line: trainer.monitor: received 'val/accuracy', expected a metric this config records: test/acc, test/loss,"
        " train/acc, train/loss, val/acc, val/loss; did you mean 'val/acc'?"
    ]


def test_a_callbacks_monitor_and_its_default_are_checked(problems):
    callbacks = "callbacks:\n  - {class: expresso.callbacks.EarlyStopping%s}\n"
    found = problems(PIPELINES + callbacks % ", monitor: val/both/accc") + problems(PIPELINES + callbacks % "")
    assert [line.split(": received ")[0] for line in found] == [
        "exp.yaml: callbacks.0.monitor",
        "exp.yaml: callbacks.0.monitor",
    ]
    assert found[0].endswith("did you mean 'val/both/acc'?")
    assert "received 'val/loss' (the default of expresso.callbacks.EarlyStopping), expected a metric" in found[1]


def test_a_stages_early_stopping_and_until_monitors_are_checked(problems):
    text = PIPELINES + (
        "stages:\n"
        "  - {train: [rebuild], early_stopping: {monitor: val/rebuild/los}}\n"
        "  - {train: [both], until: {class: my_project.cb.reached, _partial_: true, monitor: val/both/ac}}\n"
    )
    found = problems(text)
    assert [line.split(": received ")[0] for line in found] == [
        "exp.yaml: stages.0.early_stopping.monitor",
        "exp.yaml: stages.1.until.monitor",
    ]
    assert found[0].endswith("did you mean 'val/rebuild/loss'?") and found[1].endswith("did you mean 'val/both/acc'?")


def test_monitors_of_provided_scheduled_and_unmeasured_names_pass(write, in_tmp):
    """val/loss of a dataset without a val split is a name (never measured, the fit warns), not a typo."""
    write({"exp.yaml": PLAIN, "my_project/__init__.py": "", "my_project/cb.py": PROVIDES})
    overrides = [
        "callbacks=[{class: my_project.cb.F1}, {class: expresso.callbacks.EarlyStopping, monitor: val/f1_custom}, {class: expresso.callbacks.Checkpoint, monitor: lr}]",
        "scheduler={class: torch.optim.lr_scheduler.StepLR, step_size: 1}",
        "dataset={class: torch.utils.data.TensorDataset}",
        "trainer.monitor=val/loss",
    ]
    assert check(load_config("exp.yaml", overrides, check=True))["trainer"]["monitor"] == "val/loss"
