"""The trainings and commands the run-command tests read, started together once per session.

Each process spends ~3 s importing torch, so the trainings start together
(``trained``), and so do the eval and predict commands (``on_base``): the
cores overlap their start-up. What the runs are: test_cli_train.py's docstring.
"""

from __future__ import annotations

import os
import shutil
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from cli_runs import (
    EXAMPLE_EXPERIMENTS,
    EXAMPLES,
    EXPERIMENTS,
    FIXTURES,
    FROZEN_CLOCK,
    FROZEN_TIME,
    GRAPH_EXAMPLES,
    only_run_dir,
    read_record,
    tiny_run,
    together,
)


@pytest.fixture(scope="session")
def project(tmp_path_factory) -> Path:
    """A copy of the digits example project, with the test experiments and fixtures/ (user code) in it."""
    root = tmp_path_factory.mktemp("project")
    shutil.copytree(EXAMPLES / "configs", root / "configs")
    shutil.copytree(FIXTURES, root / "fixtures", ignore=shutil.ignore_patterns("__pycache__"))
    for name, text in EXPERIMENTS.items():
        (root / "configs" / "experiments" / name).write_text(textwrap.dedent(text))
    return root


@pytest.fixture(scope="session")
def trained(project, tmp_path_factory) -> dict:
    """Every training the tests read, started at once; their results and runs roots by name."""
    roots = tmp_path_factory.mktemp("runs")
    tiny = "configs/experiments/tiny.yaml"
    frozen = {
        "PYTHONPATH": os.pathsep.join(filter(None, [str(FROZEN_CLOCK), os.environ.get("PYTHONPATH")])),
        "EXPRESSO_TEST_FROZEN_TIME": str(FROZEN_TIME),
    }
    commands = {
        experiment: (
            [
                "train",
                EXAMPLES / "configs" / "experiments" / experiment,
                "--dev-run",
                "2",
                "--runs-root",
                roots / "examples",
            ],
            None,
        )
        for experiment in [*EXAMPLE_EXPERIMENTS, *GRAPH_EXAMPLES]
    }
    commands.update(
        {
            "base": (["train", tiny, "--runs-root", roots / "table"], frozen),
            "lr-variant": (["train", tiny, "optimizer.lr=0.01", "--runs-root", roots / "table"], frozen),
            "hooked": (
                ["train", "configs/experiments/hooked.yaml", "--dev-run", "1", "--runs-root", roots / "hooked"],
                None,
            ),
            # 40 training batches of 32, 9 of validation and test: a tenth is 4 of training, and one (at least) of the others.
            "dev-fraction": (
                ["train", tiny, "trainer.batch_size=32", "--dev-run", "0.1", "--runs-root", roots / "fraction"],
                None,
            ),
        }
    )
    results = together(commands, cwd=project)
    return {"results": results, "roots": roots, "commands": {name: args for name, (args, _) in commands.items()}}


@pytest.fixture(scope="session")
def base(trained) -> Path:
    run_dir = tiny_run(trained, 0.003)
    summary = read_record(run_dir)["summary"]
    # What the eval and predict tests rely on: two epochs, best.ckpt from the first, last.ckpt from the second.
    assert (summary["epochs"], summary["best_epoch"]) == (2, 1), summary  # epochs count from 1
    return run_dir


@pytest.fixture(scope="session")
def hooked(trained) -> Path:
    result = trained["results"]["hooked"]
    assert result.returncode == 0, result.stderr
    return only_run_dir(trained["roots"] / "hooked", "hooked")


@pytest.fixture(scope="session")
def dev_fraction(trained) -> Path:
    result = trained["results"]["dev-fraction"]
    assert result.returncode == 0, result.stderr
    return only_run_dir(trained["roots"] / "fraction", "tiny")


@pytest.fixture(scope="session")
def digits_test_split():
    from expresso.data import Digits

    return Digits(split="test")


def with_dataset(run_dir: Path, copy: Path, dataset: dict) -> Path:
    """A copy of a run folder whose config names another dataset (same images, same model: the checkpoints still fit)."""
    shutil.copytree(run_dir, copy)
    config = yaml.safe_load((copy / "config.yaml").read_text())
    config["dataset"] = dataset
    (copy / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return copy


class RunsCode:
    """A pickle that runs ``touch MARKER`` if unpickled by torch's full unpickler (``weights_only=False``)."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.fixture(scope="session")
def on_base(base, hooked, digits_test_split, tmp_path_factory) -> dict:
    """The eval and predict commands, all at once; their results, and where inputs and outputs are."""
    from sklearn.datasets import load_digits

    folder = tmp_path_factory.mktemp("predict")
    raw = load_digits().data[
        digits_test_split.indices
    ]  # the test images as scikit-learn stores them: 64 values 0-16 a row
    np.save(folder / "x.npy", raw[:5])  # the first 5 test images
    header = ",".join(f"pixel_{i}" for i in range(64))
    np.savetxt(
        folder / "x.csv", raw[5:8], delimiter=",", header=header, comments="", fmt="%d"
    )  # the next 3, under a header row
    np.save(
        folder / "scaled.npy", digits_test_split.inputs.reshape(len(digits_test_split), -1).numpy()[:4]
    )  # the model's form
    wrapped = "fixtures/datasets.py:WrappedDigits"
    transformed = with_dataset(base, folder / "transformed-run", {"class": wrapped, "transform": True})
    plain = with_dataset(base, folder / "plain-run", {"class": wrapped})
    torch.save(RunsCode(folder / "evil-ran"), folder / "evil.pt")
    unrecorded = folder / "damaged-record-run"  # run.json damaged; config and checkpoints intact
    shutil.copytree(base, unrecorded)
    (unrecorded / "run.json").write_text('{"status": "comp')
    paths = {
        "folder": folder,
        "p.npy": folder / "p.npy",
        "nohook.csv": folder / "nohook.csv",
        "hook.csv": folder / "hook.csv",
        "missing": folder / "no-such-run",
        "prepared.csv": folder / "prepared.csv",
        "plain.csv": folder / "plain.csv",
        "refused.csv": folder / "refused.csv",
        "damaged-record-run": folder / "damaged-record-run",
        "evil-ran": folder / "evil-ran",
        "evil.csv": folder / "evil.csv",
    }
    commands = {
        "eval-test": ["eval", base, "--split", "test"],
        "eval-last-val": ["eval", base, "--checkpoint", "last", "--split", "val"],
        "eval-missing": ["eval", paths["missing"], "--split", "test"],
        "eval-train": ["eval", base, "--split", "train"],
        "predict": ["predict", base],
        "predict-npy": ["predict", base, "--input", folder / "x.npy"],
        "predict-csv": ["predict", base, "--input", folder / "x.csv", "--output", paths["p.npy"]],
        "predict-extra-no-hook": ["predict", base, "--output", paths["nohook.csv"], "scale=2.5"],
        "predict-hook": ["predict", hooked, "--output", paths["hook.csv"], "scale=2.5", "shift=3"],
        "predict-transformed": ["predict", transformed, "--input", folder / "x.npy", "--output", paths["refused.csv"]],
        "predict-transformed-prepared": [
            "predict",
            transformed,
            "--input",
            folder / "scaled.npy",
            "--inputs-prepared",
            "--output",
            paths["prepared.csv"],
        ],
        "predict-plain": ["predict", plain, "--input", folder / "scaled.npy", "--output", paths["plain.csv"]],
        "eval-damaged-record": ["eval", unrecorded, "--split", "test"],
        "predict-evil": ["predict", base, "--input", folder / "evil.pt", "--output", paths["evil.csv"]],
    }
    results = together({name: (args, None) for name, args in commands.items()}, cwd=folder)
    return {"results": results, "paths": paths}
