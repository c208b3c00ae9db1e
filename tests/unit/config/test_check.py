"""The pre-flight check: import every ``class``, check its arguments, inject task values."""

from __future__ import annotations

import pytest

from expresso import ConfigError, load_config

MODELS = """\
from typing import Optional

CONSTANT = 3


class MLP:
    def __init__(self, in_features: int, num_classes: int, hidden: int = 32, act: str = "relu"):
        self.in_features, self.num_classes, self.hidden, self.act = in_features, num_classes, hidden, act


class Digits:
    def __init__(self, split: str, num_classes: int = 10, root: str = "data"):
        self.split, self.num_classes, self.root = split, num_classes, root


class Accuracy:
    def __init__(self, num_classes: int, average: str = "micro"):
        self.num_classes, self.average = num_classes, average

    def __call__(self, prediction, target):
        return 1.0


class Loss:
    def __init__(self, num_classes: int = 0, weight: float = 1.0, reduction: Optional[str] = None):
        self.num_classes, self.weight = num_classes, weight


def make_optimizer(params, num_classes: int = 0, lr: float = 0.1):
    return ("optimizer", list(params), num_classes, lr)


class Wrapper:
    def __init__(self, backbone, scale: float = 1.0):
        self.backbone, self.scale = backbone, scale


class Keywords:
    def __init__(self, alpha: float = 1.0, **kwargs):
        self.alpha, self.kwargs = alpha, kwargs


class Union604:
    def __init__(self, steps: int | None = None):
        self.steps = steps
"""


@pytest.fixture
def project(write, in_tmp):
    """A project folder: configs/ beside a user package my_project/ that is not installed."""
    write({"my_project/__init__.py": "", "my_project/models.py": MODELS})
    return in_tmp


def check_problems(write, text: str, overrides=()) -> list[str]:
    write({"configs/exp.yaml": text})
    with pytest.raises(ConfigError) as info:
        load_config("configs/exp.yaml", list(overrides), check=True)
    return [str(problem) for problem in info.value.problems]


def checked(write, text: str, overrides=()):
    write({"configs/exp.yaml": text})
    return load_config("configs/exp.yaml", list(overrides), check=True)


# -- class paths ---------------------------------------------------------------


def test_misspelt_class_name_suggests_the_existing_one(project, write):
    [message] = check_problems(write, "optimizer: {class: torch.optim.AdamX, lr: 0.1}\n")
    assert message.startswith(
        "configs/exp.yaml: optimizer.class: cannot import 'torch.optim.AdamX': 'torch.optim' has no attribute 'AdamX';"
        " did you mean "
    )
    assert "torch.optim.AdamW" in message.split("did you mean ")[1]


def test_misspelt_module_suggests_the_full_corrected_path(project, write):
    assert check_problems(write, "optimizer: {class: torch.optm.AdamW}\n") == [
        "configs/exp.yaml: optimizer.class: cannot import 'torch.optm.AdamW': 'torch' has no attribute 'optm';"
        " did you mean torch.optim.AdamW?"
    ]


def test_misspelt_top_level_package_suggests_the_installed_one(project, write):
    assert check_problems(write, "optimizer: {class: tourch.optim.AdamW}\n") == [
        "configs/exp.yaml: optimizer.class: cannot import 'tourch.optim.AdamW': no module named 'tourch'"
        f" (project root: {project.resolve()}, the folder holding configs/; modules are imported from there);"
        " did you mean torch.optim.AdamW?"
    ]


def test_misspelt_user_class_in_a_file_path_suggests_the_defined_one(project, write):
    assert check_problems(write, "model: {class: 'my_project/models.py:MLPP', in_features: 2}\n") == [
        "configs/exp.yaml: model.class: cannot import 'my_project/models.py:MLPP': 'my_project/models.py' defines no"
        " 'MLPP'; did you mean my_project/models.py:MLP?"
    ]


def test_missing_user_file_is_an_error(project, write):
    assert check_problems(write, "model: {class: 'my_project/nets.py:MLP'}\n") == [
        "configs/exp.yaml: model.class: cannot import 'my_project/nets.py:MLP': 'my_project/nets.py:MLP': no Python"
        f" file 'my_project/nets.py' in the working directory or the project folder (project root: {project.resolve()},"
        " the folder holding configs/)"
    ]


def test_user_module_that_raises_on_import_is_reported(project, write):
    write({"my_project/broken.py": "raise RuntimeError('boom')\n"})
    [message] = check_problems(write, "model: {class: my_project.broken.Net}\n")
    assert message.startswith(
        "configs/exp.yaml: model.class: cannot import 'my_project.broken.Net': importing 'my_project.broken"
    )
    assert message.endswith(" raised RuntimeError: boom")


def test_class_path_naming_a_non_callable_is_an_error(project, write):
    assert check_problems(write, "model: {class: my_project.models.CONSTANT}\n") == [
        "configs/exp.yaml: model.class: cannot import 'my_project.models.CONSTANT': 'my_project.models.CONSTANT'"
        " names a int, which is not callable"
    ]


@pytest.mark.parametrize("spelling", ["my_project.models.MLP", "my_project/models.py:MLP"])
def test_user_class_in_the_project_folder_resolves_by_either_spelling(project, write, spelling):
    config = checked(write, f"model: {{class: '{spelling}', in_features: 2, num_classes: 3}}\n")
    assert config["model"] == {"class": spelling, "in_features": 2, "num_classes": 3}


def test_user_class_resolves_from_the_project_folder_when_run_elsewhere(project, write, monkeypatch):
    write({"configs/exp.yaml": "model: {class: 'my_project/models.py:MLP', in_features: 2}\ntask: {num_classes: 3}\n"})
    (project / "elsewhere").mkdir()
    monkeypatch.chdir(project / "elsewhere")
    config = load_config(project / "configs/exp.yaml", check=True)
    assert config["model"]["num_classes"] == 3


# -- arguments -----------------------------------------------------------------


def test_unknown_argument_is_an_error_with_a_suggestion(project, write):
    assert check_problems(
        write, "model: {class: my_project.models.MLP, in_features: 2, num_classes: 2, hiden: 8}\n"
    ) == [
        "configs/exp.yaml: model.hiden: unknown argument of my_project.models.MLP"
        " (it takes: in_features, num_classes, hidden, act); did you mean 'hidden'?"
    ]


def test_unknown_argument_of_a_torch_class_is_an_error_with_a_suggestion(project, write):
    [message] = check_problems(write, "optimizer: {class: torch.optim.AdamW, weight_decy: 0.1}\n")
    assert message.startswith(
        "configs/exp.yaml: optimizer.weight_decy: unknown argument of torch.optim.AdamW (it takes: "
    )
    assert message.endswith("); did you mean 'weight_decay'?")


def test_near_miss_of_a_named_parameter_passed_through_kwargs_is_an_error(project, write):
    assert check_problems(write, "model: {class: my_project.models.Keywords, alpah: 2.0, beta: 1}\n") == [
        "configs/exp.yaml: model.alpah: unknown argument of my_project.models.Keywords, passed on through **kwargs;"
        " did you mean 'alpha'?"
    ]


def test_missing_required_argument_of_a_task_target_mentions_task(project, write):
    assert check_problems(write, "model: {class: my_project.models.MLP, num_classes: 2}\n") == [
        "configs/exp.yaml: model: missing required argument 'in_features' of my_project.models.MLP;"
        " set model.in_features or in task (it is injected)"
    ]


def test_missing_required_argument_of_another_component_names_the_key_to_set(project, write):
    assert check_problems(write, "loss: {class: torch.nn.Linear, in_features: 2}\n") == [
        "configs/exp.yaml: loss: missing required argument 'out_features' of torch.nn.Linear; set loss.out_features"
    ]


@pytest.mark.parametrize(
    ("kwargs", "key", "message"),
    [
        ("hidden: big", "hidden", "received 'big' (str), expected an integer"),
        ("hidden: true", "hidden", "received True (bool), expected an integer"),
        ("act: 3", "act", "received 3 (int), expected a string"),
    ],
)
def test_wrong_type_against_a_simple_annotation_is_an_error(project, write, kwargs, key, message):
    text = f"model: {{class: my_project.models.MLP, in_features: 2, num_classes: 2, {kwargs}}}\n"
    assert check_problems(write, text) == [f"configs/exp.yaml: model.{key}: {message}"]


def test_integer_is_accepted_for_a_float_and_null_for_an_optional(project, write):
    config = checked(write, "loss: {class: my_project.models.Loss, weight: 2, reduction: null}\n")
    assert config["loss"] == {"class": "my_project.models.Loss", "weight": 2, "reduction": None}


def test_wrong_type_against_an_optional_annotation_is_an_error(project, write):
    assert check_problems(write, "loss: {class: my_project.models.Loss, reduction: 3}\n") == [
        "configs/exp.yaml: loss.reduction: received 3 (int), expected a string or null"
    ]


def test_wrong_type_against_a_pep604_union_is_an_error(project, write):
    assert check_problems(write, "model: {class: my_project.models.Union604, steps: many}\n") == [
        "configs/exp.yaml: model.steps: received 'many' (str), expected an integer or null"
    ]


def test_positional_arguments_that_do_not_fit_are_an_error(project, write):
    [message] = check_problems(write, "loss: {class: my_project.models.Loss, _args_: [1, 2, 3, 4]}\n")
    assert message.startswith("configs/exp.yaml: loss._args_: arguments do not fit my_project.models.Loss: ")
    assert "too many positional arguments" in message


def test_nested_components_are_checked_with_their_key_path(project, write):
    text = (
        "model: {class: my_project.models.Wrapper, backbone: {class: my_project.models.MLP, in_features: 2, hiden: 3}}\n"
        "task: {num_classes: 2}\n"
    )
    assert check_problems(write, text) == [
        "configs/exp.yaml: model.backbone.hiden: unknown argument of my_project.models.MLP"
        " (it takes: in_features, num_classes, hidden, act); did you mean 'hidden'?"
    ]


def test_schema_and_signature_problems_are_reported_together(project, write):
    found = check_problems(write, "trainer: {max_epochs: 0}\noptimizer: {class: torch.optim.AdamX}\n")
    assert [line.split(": ")[1] for line in found] == ["trainer.max_epochs", "optimizer.class"]


def test_problem_in_a_referenced_file_names_that_file(project, write):
    write({"configs/models/mlp.yaml": "class: my_project.models.MLP\nin_features: 2\nnum_classes: 2\nhiden: 3\n"})
    [message] = check_problems(write, "model: models/mlp.yaml\n")
    assert message.startswith("configs/models/mlp.yaml: model.hiden: unknown argument of my_project.models.MLP")


# -- arguments the engine supplies ---------------------------------------------


def test_optimizer_first_parameter_is_not_reported_missing(project, write):
    text = (
        "optimizer: {class: torch.optim.AdamW, lr: 0.01}\n"
        "scheduler: {class: torch.optim.lr_scheduler.StepLR, step_size: 3}\n"
    )
    config = checked(write, text)
    assert config["optimizer"] == {"class": "torch.optim.AdamW", "lr": 0.01}


def test_user_optimizer_function_first_parameter_is_not_reported_missing(project, write):
    config = checked(write, "optimizer: {class: my_project.models.make_optimizer, lr: 0.5}\n")
    assert config["optimizer"] == {"class": "my_project.models.make_optimizer", "lr": 0.5}


def test_dataset_split_is_not_reported_missing(project, write):
    config = checked(write, "dataset: {class: my_project.models.Digits, root: /data}\n")
    assert config["dataset"]["root"] == "/data"


def test_first_parameter_of_a_model_is_reported_missing(project, write):
    [message] = check_problems(write, "model: {class: my_project.models.Wrapper}\n")
    assert message.startswith(
        "configs/exp.yaml: model: missing required argument 'backbone' of my_project.models.Wrapper"
    )


def test_partial_component_is_not_reported_for_missing_arguments(project, write):
    config = checked(write, "model: {class: my_project.models.MLP, _partial_: true, hidden: 4}\n")
    assert config["model"] == {"class": "my_project.models.MLP", "_partial_": True, "hidden": 4}


# -- task injection --------------------------------------------------------------

INJECTION = """\
task: {num_classes: 7, vocab_size: 100}
dataset: {class: my_project.models.Digits}
model: {class: my_project.models.MLP, in_features: 4}
metrics:
  acc: {class: my_project.models.Accuracy}
  acc3: {class: my_project.models.Accuracy, num_classes: 3}
loss: {class: my_project.models.Loss}
optimizer: {class: my_project.models.make_optimizer}
"""


def test_task_values_are_injected_into_dataset_model_and_metrics_that_take_them(project, write):
    config = checked(write, INJECTION)
    assert config["dataset"] == {
        "class": "my_project.models.Digits",
        "num_classes": 7,
        "root": "data",
    }  # defaults recorded
    assert config["model"] == {"class": "my_project.models.MLP", "in_features": 4, "num_classes": 7}
    assert config["metrics"]["acc"] == {"class": "my_project.models.Accuracy", "num_classes": 7}


def test_explicit_value_wins_over_the_task_value(project, write):
    assert checked(write, INJECTION)["metrics"]["acc3"] == {"class": "my_project.models.Accuracy", "num_classes": 3}


def test_task_values_are_not_injected_into_loss_or_optimizer(project, write):
    config = checked(write, INJECTION)
    assert config["loss"] == {"class": "my_project.models.Loss"}
    assert config["optimizer"] == {"class": "my_project.models.make_optimizer"}


def test_task_keys_a_signature_does_not_take_are_not_injected(project, write):
    config = checked(write, INJECTION)
    assert "vocab_size" not in config["model"]
    assert config["task"] == {"num_classes": 7, "vocab_size": 100}


def test_injection_happens_only_with_check(project, write):
    write({"configs/exp.yaml": INJECTION})
    config = load_config("configs/exp.yaml")
    assert config["model"] == {"class": "my_project.models.MLP", "in_features": 4}
    assert config.check()["model"] == {"class": "my_project.models.MLP", "in_features": 4, "num_classes": 7}


def test_injected_values_appear_in_the_printed_config(project, write):
    printed = checked(write, INJECTION).to_yaml()
    assert "model:\n  class: my_project.models.MLP\n  in_features: 4\n  num_classes: 7\n" in printed
    assert "loss:\n  class: my_project.models.Loss\noptimizer:" in printed


def test_injected_value_follows_a_task_override(project, write):
    assert checked(write, INJECTION, ["task.num_classes=5"])["model"]["num_classes"] == 5


def test_check_records_the_datasets_defaulted_arguments_but_not_split(write, in_tmp):
    write({"exp.yaml": "dataset: {class: expresso.data.Digits}\ntask: {target: parity}\n"})
    dataset = load_config("exp.yaml", check=True)["dataset"]
    assert dataset == {
        "class": "expresso.data.Digits",
        "target": "parity",
        "val_fraction": 0.15,
        "test_fraction": 0.15,
        "seed": 0,
        "train_fraction": 1.0,
    }
    assert load_config("exp.yaml")["dataset"] == {"class": "expresso.data.Digits"}
