"""``loggers:`` short names and specs: a tracker whose extra is missing is one problem naming the install command."""

import sys

import pytest

from expresso.config.loggers import KNOWN_LOGGERS, logger_component, logger_problems
from expresso.config.state_keys import shared_state_key_problems
from expresso.loggers import Logger


def problems(loggers):
    return [str(problem) for problem in logger_problems({"loggers": loggers}, lambda path: "exp.yaml")]


@pytest.mark.parametrize(
    ("name", "module"),
    [
        ("tensorboard", "tensorboard"),
        ("mlflow", "mlflow"),
        ("comet", "comet_ml"),
        ("wandb", "wandb"),
        ("clearml", "clearml"),
        ("sacred", "sacred"),
    ],
)
def test_a_tracker_whose_library_is_not_importable_is_refused_by_name_and_by_class(monkeypatch, name, module):
    monkeypatch.setitem(sys.modules, module, None)  # Python's mark of a module that cannot be imported
    hint = f"the {name} logger needs the {module} package, which is not installed: pip install torch-expresso[{name}]"
    spec = {"class": KNOWN_LOGGERS[name].cls}
    exported = {"class": spec["class"].replace(f".{name}.", ".")}  # expresso.loggers.MLflowLogger
    assert problems(["csv", name, spec, exported]) == [
        f"exp.yaml: loggers.1: {hint}",
        f"exp.yaml: loggers.2.class: {hint}",
        f"exp.yaml: loggers.3.class: {hint}",
    ]


@pytest.mark.slow  # needs every tracker's extra, which make test-slow installs
def test_installed_trackers_pass_and_short_names_stand_for_their_class():
    assert (
        problems(
            [
                "csv",
                "tensorboard",
                "clearml",
                "sacred",
                "comet",
                "wandb",
                {"class": "expresso.loggers.MLflowLogger", "log_checkpoint": True},
            ]
        )
        == []
    )
    twice = {"loggers": ["tensorboard", {"class": "expresso.loggers.TensorBoardLogger", "log_dir": "tb"}]}
    assert [str(p) for p in shared_state_key_problems(twice, lambda path: "exp.yaml")] == [
        "exp.yaml: loggers.1: a second TensorBoardLogger, as loggers.0: a run's checkpoints keep each logger's state "
        "under its class name, so a class is listed once (for a second destination of one kind, list a subclass of "
        "TensorBoardLogger)"
    ]
    assert logger_component("csv") is None
    assert logger_component("mlflow") == {"class": "expresso.loggers.mlflow.MLflowLogger"}
    assert logger_component({"class": "x.Y", "a": 1}) == {"class": "x.Y", "a": 1}


class Keyed(Logger):
    """Tells its instances apart in a checkpoint."""

    def __init__(self, name: str) -> None:
        self.name = name

    @property
    def state_key(self) -> str:
        return f"Keyed.{self.name}"


def test_a_logger_class_listed_twice_is_refused_naming_both_entries_unless_its_state_key_tells_them_apart():
    base = {"class": "expresso.loggers.Logger"}

    def twice(loggers: list) -> list[str]:
        return [str(p) for p in shared_state_key_problems({"loggers": loggers}, lambda path: "exp.yaml")]

    assert twice(["csv", base, {"class": "expresso.loggers.base.Logger"}, base]) == [
        f"exp.yaml: loggers.{index}: a second Logger, as loggers.1: a run's checkpoints keep each logger's state under "
        "its class name, so a class is listed once (for a second destination of one kind, list a subclass of Logger)"
        for index in (2, 3)
    ]
    keyed = f"{__name__}.Keyed"
    assert twice([base, {"class": keyed, "name": "a"}, {"class": keyed, "name": "b"}]) == []
