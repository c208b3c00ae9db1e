"""The examples/digits project: every experiment resolves, checks, and builds working parts."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

from expresso import instantiate, load_config
from expresso.cli import main

EXPERIMENTS = sorted(
    p
    for p in (Path(__file__).resolve().parents[2] / "examples/digits/configs/experiments").iterdir()
    if p.suffix in (".yaml", ".yml", ".json", ".py")  # not a __pycache__ an older checkout left
)
SINGLE_MODEL = [
    path for path in EXPERIMENTS if "models" not in load_config(path)
]  # the others: test_examples_graphs.py
TRACKERS = {"tensorboard", "mlflow"}  # their extras are installed by make test-slow, not by setup


def checked(paths: list[Path]) -> list:
    """The examples whose check needs a tracker's extra run in make test-slow."""
    return [
        pytest.param(path, marks=pytest.mark.slow) if TRACKERS & set(map(str, load_config(path)["loggers"])) else path
        for path in paths
    ]


def test_examples_cover_every_format():
    assert {p.suffix for p in EXPERIMENTS} == {".yaml", ".json", ".py"}


@pytest.mark.parametrize("path", EXPERIMENTS, ids=lambda p: p.name)
def test_config_prints_a_tree_with_no_reference_or_interpolation_left(path, capsys):
    assert main(["config", str(path)]) == 0
    printed = capsys.readouterr().out
    assert "${" not in printed
    assert "extends" not in printed
    assert not re.search(r"\.(ya?ml|json|py)\s*$", printed, re.M), printed


@pytest.mark.parametrize("path", checked(SINGLE_MODEL), ids=lambda p: p.name)
def test_experiment_builds_a_model_that_classifies_its_dataset(path):
    config = load_config(path, check=True)
    classes = config["task"]["num_classes"]
    data = instantiate(config["dataset"], split="val")
    model = instantiate(config["model"])
    optimizer = instantiate(config["optimizer"], model.parameters())
    inputs = torch.stack([data[i][0] for i in range(4)])
    assert model(inputs).shape == (4, classes)
    assert set(data.labels.tolist()) == set(range(classes))
    assert optimizer.defaults["lr"] == config["optimizer"]["lr"]
    assert config["metrics"]["acc"]["num_classes"] == classes


def test_two_models_share_one_task_and_dataset():
    mlp = load_config(EXPERIMENTS[0].parent / "digits_mlp.yaml")
    cnn = load_config(EXPERIMENTS[0].parent / "digits_cnn.yaml")
    assert mlp["model"]["class"] != cnn["model"]["class"]
    assert (mlp["task"], mlp["dataset"]) == (cnn["task"], cnn["dataset"])


def test_one_model_on_two_tasks():
    digit = load_config(EXPERIMENTS[0].parent / "digits_mlp.yaml", check=True)
    parity = load_config(EXPERIMENTS[0].parent / "digits_mlp_parity.py", check=True)
    assert digit["model"]["class"] == parity["model"]["class"] == "expresso.models.MLP"
    assert (digit["model"]["num_classes"], parity["model"]["num_classes"]) == (10, 2)
    assert (digit["dataset"]["target"], parity["dataset"]["target"]) == ("digit", "parity")
