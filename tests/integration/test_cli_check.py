"""What ``--check`` finds before a run folder exists, and what it writes into the checked config.

A device this machine lacks and a misspelt monitor once passed the check and
failed later with a traceback (the monitor after a whole epoch, leaving a
failed run folder); a ReduceLROnPlateau followed ``trainer.monitor`` but not
``trainer.mode``. The trainings start together (each process spends ~3 s
importing torch) in the project copy of conftest.py.
"""

from __future__ import annotations

import sys

import pytest
import torch
from cli_runs import one_line_error, only_run_dir, read_config, read_history, together

from expresso.cli import main

TINY = "configs/experiments/tiny.yaml"  # the digits MLP, 2 epochs of 10 batches of 128
PLATEAU = "scheduler={class: torch.optim.lr_scheduler.ReduceLROnPlateau, patience: 0, factor: 0.5}"
HAS_CUDA = torch.cuda.is_available()
HAS_MPS = torch.backends.mps.is_available()


@pytest.fixture(scope="module")
def checked(project, tmp_path_factory) -> dict:
    roots = tmp_path_factory.mktemp("checked")
    commands = {
        "monitor": ["train", TINY, "trainer.monitor=val/accuracy"],
        "plateau": ["train", TINY, "trainer.monitor=val/acc", "trainer.mode=max", "trainer.max_epochs=3", PLATEAU],
    }
    results = together(
        {name: ([*args, "--runs-root", roots / name], None) for name, args in commands.items()}, cwd=project
    )
    return {"results": results, "roots": roots}


def test_a_misspelt_monitor_is_refused_at_check_with_the_closest_name_and_no_run_folder(checked):
    assert one_line_error(checked["results"]["monitor"]) == (
        "expresso: error: command line: trainer.monitor: received 'val/accuracy', expected a metric this config records:"
        " lr, test/acc, test/loss, train/acc, train/loss, val/acc, val/loss; did you mean 'val/acc'?"
    )
    assert not (checked["roots"] / "monitor").exists()


@pytest.mark.skipif(HAS_CUDA, reason="this machine has CUDA: trainer.device=cuda is valid here")
def test_train_on_cuda_without_cuda_is_refused_at_check_without_a_run_folder(project, tmp_path, monkeypatch, capsys):
    """In-process (a process costs ~3 s): the check fails before anything is built; the monitor test above runs this path as a process."""
    monkeypatch.chdir(project)
    assert main(["train", TINY, "trainer.device=cuda", "--runs-root", str(tmp_path / "runs")]) == 2
    assert capsys.readouterr().err == (
        "expresso: error: command line: trainer.device: received 'cuda', but this machine has no CUDA device; use auto or cpu\n"
    )
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize(
    ("command", "device", "absent"),
    [(["config", "--check"], "mps", HAS_MPS), (["graph"], "mps", HAS_MPS), (["config", "--check"], "cuda", HAS_CUDA)],
)
def test_config_check_and_graph_refuse_a_device_this_machine_lacks(
    project, monkeypatch, capsys, command, device, absent
):
    if absent:
        pytest.skip(f"this machine has {device}")
    monkeypatch.chdir(project)
    assert main([command[0], TINY, *command[1:], f"trainer.device={device}"]) == 2
    out, err = capsys.readouterr()
    name = {"mps": "MPS device (Apple silicon)", "cuda": "CUDA device"}[device]
    assert (out, err) == (
        "",
        f"expresso: error: command line: trainer.device: received {device!r}, but this machine has no {name}; use auto or cpu\n",
    )


def test_reduce_on_plateau_follows_trainer_mode_and_the_record_says_so(checked):
    """monitor=val/acc mode=max: an epoch that improved accuracy keeps the rate (min mode halved it for the next epoch)."""
    result = checked["results"]["plateau"]
    assert result.returncode == 0, result.stderr
    run_dir = only_run_dir(checked["roots"] / "plateau", "tiny")
    assert read_config(run_dir)["scheduler"] == {
        "class": "torch.optim.lr_scheduler.ReduceLROnPlateau",
        "patience": 0,
        "factor": 0.5,
        "mode": "max",
    }
    rows = [row for row in read_history(run_dir) if row["val/acc"]]
    accuracy, rates = [float(row["val/acc"]) for row in rows], [float(row["lr"]) for row in rows]
    assert (
        len(rows) == 3 and accuracy[1] > accuracy[0]
    )  # the improving epoch this test is about; epoch 3's rate shows the step
    expected, best, rate = [], float("-inf"), 3.0e-3
    for value in accuracy:  # torch's rule for mode max, threshold 1e-4 relative, patience 0
        expected.append(rate)
        if value > best * (1 + 1e-4):
            best = value
        else:
            rate *= 0.5
    assert rates == expected
    assert rates[2] == 3.0e-3


def test_a_plateau_mode_against_trainer_mode_is_refused_naming_both(project, monkeypatch, capsys):
    monkeypatch.chdir(project)
    plateau = PLATEAU.replace("factor: 0.5", "factor: 0.5, mode: min")
    assert main(["config", TINY, "--check", "trainer.monitor=val/acc", "trainer.mode=max", plateau]) == 2
    assert capsys.readouterr().err == (
        "expresso: error: command line: scheduler.mode: received 'min', but trainer.mode is 'max': ReduceLROnPlateau"
        " watches trainer.monitor ('val/acc'), so it takes trainer.mode; leave its mode out to follow trainer.mode\n"
    )


def test_a_stages_early_stopping_is_refused_at_check_not_when_train_builds_it(project, tmp_path, monkeypatch, capsys):
    """Its keys' values passed `config --check` and failed when `train` built the stage; its spec is checked now."""
    monkeypatch.chdir(project)
    stages = "stages=[{epochs: 1, early_stopping: {patience: -1}}]"
    expected = "expresso: error: command line: stages.0.early_stopping.patience: received -1, expected a value >= 0\n"
    assert main(["config", TINY, "--check", stages]) == 2
    assert capsys.readouterr() == ("", expected)
    assert main(["train", TINY, stages, "--runs-root", str(tmp_path / "runs")]) == 2
    assert capsys.readouterr().err == expected and not (tmp_path / "runs").exists()


def test_config_callbacks_prints_the_loop_the_config_makes_with_its_settings(project, tmp_path, monkeypatch, capsys):
    """`config --callbacks`: the callbacks per event as train builds them; a setting's filter and a configured callback show."""
    monkeypatch.chdir(project)
    early = "+callbacks=[{class: expresso.callbacks.EarlyStopping, monitor: val/loss, patience: 2}]"
    assert main(["config", TINY, "--callbacks", "trainer.log_every_n_steps=7", early]) == 0
    out, err = capsys.readouterr()
    rows = {line.split()[0]: line.split(None, 1)[1] for line in out.splitlines()[1:]}
    assert rows["batch_end"] == "History (every 7 steps)"
    assert rows["epoch_end"] == "LRScheduler, Progress, EarlyStopping"  # by `order`: 0, 50, 60
    assert rows["epoch_checkpoint"] == "Checkpoint, History"
    assert err == "" and not (project / "runs").exists()


def test_a_callback_whose_extra_is_missing_is_refused_at_check_with_the_install_line(
    project, tmp_path, monkeypatch, capsys
):
    """In-process, with psutil hidden (Python's mark of a module that cannot be imported): `--check` and `train` refuse alike."""
    monkeypatch.chdir(project)
    monkeypatch.setitem(sys.modules, "psutil", None)
    monitor = "callbacks=[{class: expresso.callbacks.SystemMonitor, interval: 1.0}]"
    expected = (
        "expresso: error: command line: callbacks.0.class: expresso.callbacks.SystemMonitor needs the psutil package,"
        " which is not installed: pip install torch-expresso[monitor]\n"
    )
    assert main(["config", TINY, "--check", monitor]) == 2
    assert capsys.readouterr() == ("", expected)
    assert main(["train", TINY, monitor, "--runs-root", str(tmp_path / "runs")]) == 2
    assert capsys.readouterr().err == expected and not (tmp_path / "runs").exists()


def test_two_callbacks_of_one_class_are_refused_at_check_not_with_a_traceback_when_train_builds_them(
    project, tmp_path, monkeypatch, capsys
):
    """They would share one checkpoint entry: the trainer refused them with a ValueError traceback, after the run folder existed."""
    monkeypatch.chdir(project)
    twice = (
        "callbacks=[{class: expresso.callbacks.EarlyStopping, monitor: val/loss},"
        " {class: expresso.callbacks.EarlyStopping, monitor: val/acc, mode: max}]"
    )
    expected = (
        "expresso: error: command line: callbacks.1: a second EarlyStopping, as callbacks.0: a run's checkpoints keep"
        " each callback's state under its class name, so a class is listed once (for a second one of its kind, list a"
        " subclass of EarlyStopping)\n"
    )
    assert main(["config", TINY, "--check", twice]) == 2
    assert capsys.readouterr() == ("", expected)
    assert main(["train", TINY, twice, "--runs-root", str(tmp_path / "runs")]) == 2
    assert capsys.readouterr().err == expected and not (tmp_path / "runs").exists()
