"""TensorBoard and MLflow through the CLI, each read back with its own client: the scalars, params, artifacts and status
a run leaves, equal to its metrics.csv and config.yaml; a run killed past its checkpoint and resumed is one curve in
both; an unknown logger name and a tracker whose extra is missing are one line at --check."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from cli_runs import FIXTURES, finish, one_line_error, only_run_dir, read_config, read_history, start

# MLflow's SQLAlchemy store, read here, uses a loader strategy SQLAlchemy 2.1 deprecates: theirs to change.
pytestmark = [
    pytest.mark.slow,
    pytest.mark.filterwarnings("ignore:The ``noload`` loader strategy:DeprecationWarning"),
]  # make test-slow: it needs the tensorboard and mlflow extras, which it installs

TRACKED = [
    "configs/experiments/tiny.yaml",
    "loggers=[csv, tensorboard, mlflow]",
    "trainer.log_every_n_steps=3",  # 10 steps an epoch: step rows at 3, 6, 9, then 12, 15, 18
]
WITHOUT_MLFLOW = {
    "PYTHONPATH": os.pathsep.join(filter(None, [str(FIXTURES / "without_mlflow"), os.environ.get("PYTHONPATH")]))
}


def curves(run_dir: Path) -> dict[str, list[tuple[int, float]]]:
    """metrics.csv as one (step, value) series per column, in the order the rows were written."""
    series: dict[str, list[tuple[int, float]]] = {}
    for row in read_history(run_dir):
        for key, value in row.items():
            if key not in ("epoch", "step") and value != "":
                series.setdefault(key, []).append((int(row["step"]), float(value)))
    return series


def tensorboard_curves(run_dir: Path) -> dict[str, list[tuple[int, float]]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator  # collection stays quick

    events = EventAccumulator(str(run_dir / "tensorboard"))
    events.Reload()
    return {tag: [(event.step, event.value) for event in events.Scalars(tag)] for tag in events.Tags()["scalars"]}


def as_float32(series: dict[str, list[tuple[int, float]]]) -> dict[str, list[tuple[int, float]]]:
    """TensorBoard keeps scalars as float32."""
    return {key: [(step, float(np.float32(value))) for step, value in points] for key, points in series.items()}


def flattened(tree, prefix: str = "") -> dict[str, str]:
    """The config as MLflow params: dotted key paths (list items by index), values as text (an empty list too)."""
    if not tree or not isinstance(tree, (dict, list)):
        return {prefix: str(tree)}
    items = tree.items() if isinstance(tree, dict) else enumerate(tree)
    flat: dict[str, str] = {}
    for key, value in items:
        flat.update(flattened(value, f"{prefix}.{key}" if prefix else str(key)))
    return flat


def mlflow_runs(runs_root: Path):
    """The default store under the runs root, and every run in it by its run folder's name."""
    import mlflow  # ~2 s: imported by this test only, not when the suite is collected

    client = mlflow.MlflowClient(f"sqlite:///{runs_root / 'mlflow.db'}")
    runs = client.search_runs([experiment.experiment_id for experiment in client.search_experiments()])
    return client, {run.info.run_name: run for run in runs}


def mlflow_curves(client, run) -> dict[str, list[tuple[int, float]]]:
    return {
        key: [(metric.step, metric.value) for metric in client.get_metric_history(run.info.run_id, key)]
        for key in run.data.metrics
    }


def test_tensorboard_and_mlflow_hold_the_runs_values_and_a_run_killed_past_its_checkpoint_resumes_as_one_curve(
    project, tmp_path
):
    marker, runs_root = tmp_path / "killed-once", tmp_path / "runs"
    in_project = sorted(path.name for path in project.iterdir())  # the session's project: other tests write there too
    kill = f"callbacks=[{{class: fixtures/probes.py:KillOnce, epoch: 2, marker: {marker}}}]"
    started = {
        "killed": start(["train", *TRACKED, kill, "--runs-root", runs_root], project),
        "unknown": start(["config", "--check", "configs/experiments/tiny.yaml", "loggers=[csv, tensorbord]"], project),
        "no-extra": start(
            ["config", "--check", "configs/experiments/tiny.yaml", "loggers=[csv, mlflow]"], project, WITHOUT_MLFLOW
        ),
    }
    results = {name: finish(process) for name, process in started.items()}
    assert results["killed"].returncode == -9, results["killed"].stderr  # SIGKILL at epoch 2, before its checkpoint
    run_dir = only_run_dir(runs_root, "tiny")
    client, tracked = mlflow_runs(runs_root)
    before = tracked[run_dir.name]  # a SIGKILL leaves no word: RUNNING, holding epoch 2, which no checkpoint counts
    assert before.info.status == "RUNNING"
    assert [metric.step for metric in client.get_metric_history(before.info.run_id, "val/acc")] == [10, 20]
    resumed = finish(start(["resume", run_dir], project))
    assert resumed.returncode == 0, resumed.stderr

    # metrics.csv: each row once (the resume rebuilt it from the checkpoint and wrote epoch 2 again)
    expected = curves(run_dir)
    assert [step for step, _ in expected["train/batch_loss"]] == [3, 6, 9, 12, 15, 18]
    assert {key: [step for step, _ in points] for key, points in expected.items() if key != "train/batch_loss"} == {
        key: [10, 20] for key in ("lr", "train/loss", "train/acc", "val/loss", "val/acc")
    }

    # TensorBoard: every value at its step, each step once: the resume hid what the killed process wrote past its
    # checkpoint (epoch 2's rows, flushed before the kill), and wrote it again
    assert tensorboard_curves(run_dir) == as_float32(expected)

    # MLflow: one run (the resume continued the killed one), finished, with the config, the values at their steps
    # (none twice), config.yaml
    client, tracked = mlflow_runs(runs_root)
    assert list(tracked) == [run_dir.name]
    run = tracked[run_dir.name]
    assert run.info.status == "FINISHED"
    assert run.data.tags["expresso.run_dir"] == str(run_dir.resolve())
    assert run.data.params == flattened(read_config(run_dir))
    assert mlflow_curves(client, run) == expected
    assert [artifact.path for artifact in client.list_artifacts(run.info.run_id)] == ["config.yaml"]
    downloaded = client.download_artifacts(run.info.run_id, "config.yaml", str(tmp_path))
    assert Path(downloaded).read_text() == (run_dir / "config.yaml").read_text()
    assert sorted(path.name for path in project.iterdir()) == in_project  # nothing in the working directory

    assert one_line_error(results["unknown"]) == (
        "expresso: error: command line: loggers.1: unknown logger 'tensorbord'; expected one of csv, tensorboard, mlflow,"
        " clearml, sacred, comet, wandb or a component; did you mean 'tensorboard'?"
    )
    assert one_line_error(results["no-extra"]) == (
        "expresso: error: command line: loggers.1: the mlflow logger needs the mlflow package, which is not installed: "
        "pip install torch-expresso[mlflow]"
    )
