"""``expresso sweep`` and the series of ``expresso train``: trials as real processes, J at once, their folders and summary.

The sweeps start together once per module (each trial is a process that
imports torch): a 2x2 grid with --jobs 2, an Optuna search whose pruner
stops the bad trial, and a folder of configs (one with a ``series:``) run by
``expresso train``; the grid, run again, skips every trial. Every trial
trains 1-2 epochs of 2-5 batches of digits. Killing a sweep midway and
running it again is make test-slow's (five processes more).
"""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import textwrap
import time
from datetime import datetime
from pathlib import Path

import pytest
from cli_runs import EXAMPLES, FIXTURES, read_config, read_history, read_record, start

from expresso.cli import main

BASE = EXAMPLES / "configs" / "experiments" / "digits_mlp.yaml"
CONFIGS = {
    "grid.yaml": f"""\
        extends: {BASE}
        name: grid
        trainer: {{max_epochs: 1, batch_size: 128, limit_batches: 2}}
        """,
    "pruned.yaml": f"""\
        extends: {BASE}
        name: pruned
        trainer: {{max_epochs: 2, batch_size: 128, limit_batches: 5}}
        sweep:
          search: optuna
          parameters:
            optimizer.lr: {{choice: [1.0e-7, 1.0e-2]}}
          trials: 2
          sampler: {{class: optuna.samplers.BruteForceSampler, seed: 0}}
          # chance is 0.1: the tiny learning rate stays below 0.2 after its first epoch, 1e-2 is far above
          pruner: {{class: optuna.pruners.ThresholdPruner, lower: 0.2}}
        """,
    "series/a.yaml": f"""\
        extends: {BASE}
        name: a
        trainer: {{max_epochs: 1, batch_size: 128, limit_batches: 2}}
        series:
          - {{trainer.seed: 2, optimizer.lr: 1.0e-2}}
        """,
    "series/b.yaml": f"""\
        extends: {BASE}
        name: b
        trainer: {{max_epochs: 1, batch_size: 128, limit_batches: 2, seed: 7}}
        """,
    "killed.yaml": f"""\
        extends: {BASE}
        name: killed
        trainer: {{max_epochs: 2, batch_size: 128, limit_batches: 2}}
        # the sweep grids `at`: trial 1 waits at step 3 (in epoch 2, after epoch 1's checkpoint) for the kill
        callbacks: [{{class: {FIXTURES / "pause.py"}:PauseOnce, marker: paused, at: 0}}]
        """,
}


GRID_COMMAND = ["sweep", "grid.yaml", "--grid", "optimizer.lr=0.001,0.003", "--grid", "trainer.seed=0,1", "--jobs", "2"]


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("sweeps")
    for name, text in CONFIGS.items():
        (root / name).parent.mkdir(exist_ok=True)
        (root / name).write_text(textwrap.dedent(text))
    return root


@pytest.fixture(scope="module")
def swept(folder) -> dict:
    """The three sweeps, started at once; their results by name."""
    commands = {
        "grid": GRID_COMMAND,
        "pruned": ["sweep", "pruned.yaml"],
        "series": ["train", "series", "--jobs", "2"],
    }
    started = {name: start([*args, "--runs-root", "runs"], folder) for name, args in commands.items()}
    return {name: finish(process) for name, process in started.items()}


def finish(process: subprocess.Popen) -> subprocess.CompletedProcess:
    """The process's result; a sweep of several trials may take minutes on a loaded machine."""
    stdout, stderr = process.communicate(timeout=900)
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def only_sweep(folder: Path, name: str) -> Path:
    [found] = (folder / "runs" / name).glob("sweep-*")
    return found


def trials_table(sweep: Path) -> list[dict]:
    return list(csv.DictReader((sweep / "trials.csv").open()))


def final(run_dir: Path, metric: str = "val/acc") -> float:
    return read_record(run_dir)["summary"]["final"]["metrics"][metric]


@pytest.mark.slow  # the three sweeps of `swept` (~30 s): CI runs the README's and docs' grid and series lines
def test_a_2x2_grid_with_2_jobs_runs_4_completed_trials_two_at_a_time(swept, folder):
    assert swept["grid"].returncode == 0, swept["grid"].stderr
    sweep = only_sweep(folder, "grid")
    trials = sorted(sweep.glob("trial-*"))
    assert [t.name for t in trials] == ["trial-000", "trial-001", "trial-002", "trial-003"]
    # the last parameter varies fastest; each trial's config holds its values and no sweep section
    configs = [read_config(t) for t in trials]
    assert [(c["optimizer"]["lr"], c["trainer"]["seed"]) for c in configs] == [
        (0.001, 0), (0.001, 1), (0.003, 0), (0.003, 1)
    ]  # fmt: skip
    assert all("sweep" not in c for c in configs)
    assert [read_record(t)["status"] for t in trials] == ["completed"] * 4
    rows = trials_table(sweep)
    assert [(r["trial"], r["status"], float(r["objective"])) for r in rows] == [
        (str(n), "completed", final(t)) for n, t in enumerate(trials)
    ]
    summary = json.loads((sweep / "sweep.json").read_text())
    objectives = [final(t) for t in trials]
    assert summary["best_trial"] == objectives.index(max(objectives))
    assert summary["counts"] == {"completed": 4}
    # each trial's process, start-up included: two at a time, never three
    spans = [
        (datetime.fromisoformat(r["launched_at"]), datetime.fromisoformat(r["finished_at"])) for r in summary["results"]
    ]
    running = [sum(start <= moment < end for start, end in spans) for moment, _ in spans]
    assert max(running) == 2, spans


@pytest.mark.slow  # the three sweeps of `swept` (~30 s): CI runs the README's and docs' grid and series lines
def test_the_same_sweep_run_again_skips_every_finished_trial_and_changes_none(swept, folder):
    sweep = only_sweep(folder, "grid")
    records = {path: path.read_bytes() for path in sweep.glob("trial-*/run.json")}
    again = finish(start([*GRID_COMMAND, "--runs-root", "runs"], folder))
    assert again.returncode == 0, again.stderr
    # two slots read the trials at once: their lines come in either order
    assert sorted(line.split(" (")[0] for line in again.stderr.splitlines()) == [
        f"trial {n:03d}: completed earlier, skipped" for n in range(4)
    ]
    assert {path: path.read_bytes() for path in sweep.glob("trial-*/run.json")} == records
    assert [r["status"] for r in trials_table(sweep)] == ["completed"] * 4


@pytest.mark.slow  # the three sweeps of `swept` (~30 s): CI runs the README's and docs' grid and series lines
def test_an_optuna_search_prunes_the_bad_trial_and_completes_the_good_one(swept, folder):
    import optuna

    assert swept["pruned"].returncode == 0, swept["pruned"].stderr
    sweep = only_sweep(folder, "pruned")
    rows = {float(r["optimizer.lr"]): r for r in trials_table(sweep)}
    bad, good = (sweep / f"trial-{int(rows[lr]['trial']):03d}" for lr in (1e-7, 1e-2))
    assert (rows[1e-7]["status"], rows[1e-7]["objective"]) == ("pruned", "")
    assert [row["epoch"] for row in read_history(bad) if row["val/acc"]] == ["1"]  # stopped after its first epoch
    assert (rows[1e-2]["status"], float(rows[1e-2]["objective"])) == ("completed", final(good))
    study = optuna.load_study(study_name=sweep.name.removeprefix("sweep-"), storage=f"sqlite:///{sweep / 'study.db'}")
    by_lr = {t.params["optimizer.lr"]: t for t in study.trials}
    assert (by_lr[1e-7].state, by_lr[1e-2].state) == (optuna.trial.TrialState.PRUNED, optuna.trial.TrialState.COMPLETE)
    # the trial process reported each epoch's val/acc to the study: what its metrics.csv holds
    assert by_lr[1e-2].intermediate_values == {
        int(row["epoch"]): float(row["val/acc"]) for row in read_history(good) if row["val/acc"]
    }


@pytest.mark.slow  # the three sweeps of `swept` (~30 s): CI runs the README's and docs' grid and series lines
def test_train_of_a_folder_runs_each_config_and_each_series_entry_as_a_trial(swept, folder):
    assert swept["series"].returncode == 0, swept["series"].stderr
    sweep = only_sweep(folder, "series")  # the configs' names differ: the folder's name
    trials = sorted(sweep.glob("trial-*"))
    configs = [read_config(t) for t in trials]
    assert [(c["name"], c["trainer"]["seed"], c["optimizer"]["lr"]) for c in configs] == [
        ("a", 2, 1e-2),
        ("b", 7, 3e-3),
    ]
    assert all("series" not in c for c in configs)
    assert [r["status"] for r in trials_table(sweep)] == ["completed"] * 2


@pytest.mark.slow  # five processes, ~25 s: CI re-runs a finished sweep instead (above)
def test_a_killed_sweep_run_again_skips_the_finished_trial_and_resumes_the_interrupted_one(folder):
    command = ["sweep", "killed.yaml", "--grid", "callbacks.0.at=0,3", "--runs-root", "runs"]
    first = start(command, folder)
    deadline = time.monotonic() + 600
    while not (folder / "paused").exists():  # trial 0 completed, trial 1 waits in its second epoch
        assert first.poll() is None and time.monotonic() < deadline
        time.sleep(0.1)
    os.kill(first.pid, signal.SIGKILL)  # the trial it runs gets SIGTERM: it checkpoints and records how it ended
    finish(first)
    sweep = only_sweep(folder, "killed")
    while read_record(sweep / "trial-001").get("status") == "running":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert read_record(sweep / "trial-001")["status"] == "interrupted"
    done = (sweep / "trial-000" / "run.json").read_bytes()
    again = finish(start(command, folder))
    assert again.returncode == 0, again.stderr
    assert "trial 000: completed earlier, skipped" in again.stderr
    assert (sweep / "trial-000" / "run.json").read_bytes() == done
    record = read_record(sweep / "trial-001")
    assert record["status"] == "completed" and len(record["resumes"]) == 1
    assert [row["epoch"] for row in read_history(sweep / "trial-001") if row["val/acc"]] == ["1", "2"]
    assert [r["status"] for r in trials_table(sweep)] == ["completed", "completed"]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (
            ["--grid", "optimizer.lrr=0.1,0.2"],
            "expresso: error: command line: optimizer.lrr: no such key in the config (write +optimizer.lrr=... to add it); did you mean 'lr'?",
        ),
        (
            ["--grid", "optimizer.lr=0.1", "--storage", "sqlite:///x.db"],
            "expresso: error: --storage: joins an Optuna study, and this sweep's search is grid (--search optuna)",
        ),
        (
            ["--random", "optimizer.lr=uniform:0.1"],
            "expresso: error: command line: --random: 'optimizer.lr=uniform:0.1': uniform: received [0.1] (list), expected [low, high] with low < high",
        ),
    ],
)
def test_a_bad_sweep_is_one_line_and_creates_nothing(folder, tmp_path, capsys, args, expected):
    assert main(["sweep", str(folder / "grid.yaml"), *args, "--runs-root", str(tmp_path / "runs")]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [expected]
    assert not (tmp_path / "runs").exists()


def test_train_refuses_a_config_with_a_sweep_section_naming_the_command(folder, capsys):
    assert main(["train", str(folder / "pruned.yaml")]) == 2
    path = folder / "pruned.yaml"
    assert (
        capsys.readouterr().err.strip()
        == f"expresso: error: {path}: has a sweep: section; run it with `expresso sweep {path}`"
    )


def test_sweep_refuses_a_config_with_a_series_naming_train(folder, capsys):
    path = folder / "series" / "a.yaml"
    assert main(["sweep", str(path), "--grid", "trainer.seed=1,2"]) == 2
    assert capsys.readouterr().err.strip() == (
        f"expresso: error: {path}: has a series: list; run the series with `expresso train {path}`,"
        " or sweep its entries as a parameter"
    )


def test_check_plans_the_sweep_and_runs_nothing(folder, tmp_path, capsys):
    args = [
        "sweep",
        str(folder / "grid.yaml"),
        "--grid",
        "optimizer.lr=0.1,0.2",
        "--check",
        "--runs-root",
        str(tmp_path),
    ]
    assert main(args) == 0
    out = capsys.readouterr().out.strip()
    assert out.startswith("sweep ") and ": grid, 2 trial(s), maximize val/acc; would run in " in out
    assert list(tmp_path.iterdir()) == []
