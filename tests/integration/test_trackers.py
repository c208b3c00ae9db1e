"""TensorBoard and MLflow through the CLI, each read back with its own client: the scalars, params, artifacts, final
metrics and status a run leaves, equal to its metrics.csv, config.yaml and run.json; a run killed past its checkpoint and
resumed is one curve in both; a run killed before its first checkpoint and restarted from its beginning (with another
learning rate) leaves one MLflow run (the killed start's marked KILLED and deleted) and no TensorBoard event of the
killed start; an unknown logger name, a tracker whose extra is missing and one listed twice are one line at --check."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from cli_runs import FIXTURES, curves, finish, flattened, one_line_error, only_run_dir, read_config, start

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


def with_final(run_dir: Path) -> dict[str, list[tuple[int, float]]]:
    """metrics.csv's curves and the final metrics run.json holds (the selected weights'), at the fit's last step."""
    series = curves(run_dir)
    summary = json.loads((run_dir / "run.json").read_text())["summary"]
    assert sorted(summary["final"]["metrics"]) == ["test/acc", "test/loss", "val/acc", "val/loss"]
    for key, value in summary["final"]["metrics"].items():
        series[f"final/{key}"] = [(summary["step"], value)]
    return series


def tensorboard_events(run_dir: Path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator  # collection stays quick

    events = EventAccumulator(str(run_dir / "tensorboard"))
    events.Reload()
    return events


def png_pixels(data: bytes) -> list:
    """A PNG's RGB pixels as nested lists (TensorBoard stores what it was given as a PNG of its own)."""
    import io

    from PIL import Image

    with Image.open(io.BytesIO(data)) as opened:
        return np.asarray(opened.convert("RGB")).tolist()


def tensorboard_curves(run_dir: Path) -> dict[str, list[tuple[int, float]]]:
    events = tensorboard_events(run_dir)
    return {tag: [(event.step, event.value) for event in events.Scalars(tag)] for tag in events.Tags()["scalars"]}


def tensorboard_hparams(run_dir: Path) -> dict[str, object]:
    """The hyperparameters the HPARAMS tab shows for the run (its session's start)."""
    from tensorboard.plugins.hparams import plugin_data_pb2

    metadata = tensorboard_events(run_dir).SummaryMetadata("_hparams_/session_start_info")
    session = plugin_data_pb2.HParamsPluginData.FromString(metadata.plugin_data.content).session_start_info
    return {key: getattr(value, value.WhichOneof("kind")) for key, value in session.hparams.items()}


def as_float32(series: dict[str, list[tuple[int, float]]]) -> dict[str, list[tuple[int, float]]]:
    """TensorBoard keeps scalars as float32."""
    return {key: [(step, float(np.float32(value))) for step, value in points] for key, points in series.items()}


def hparam(value) -> object:
    """A config value as TensorBoard's HPARAMS holds it: numbers and text as they are, others as text."""
    return value if isinstance(value, (bool, int, float, str)) else str(value)


def mlflow_runs(runs_root: Path, deleted: bool = False):
    """The default store under the runs root, and every run in it (or every deleted one) by its run folder's name."""
    import mlflow  # ~2 s: imported by this test only, not when the suite is collected
    from mlflow.entities import ViewType

    client = mlflow.MlflowClient(f"sqlite:///{runs_root / 'mlflow.db'}")
    runs = client.search_runs(
        [experiment.experiment_id for experiment in client.search_experiments()],
        run_view_type=ViewType.DELETED_ONLY if deleted else ViewType.ACTIVE_ONLY,
    )
    named = {run.info.run_name: run for run in runs}
    assert len(named) == len(runs)  # one run per run folder
    return client, named


def mlflow_curves(client, run) -> dict[str, list[tuple[int, float]]]:
    return {
        key: [(metric.step, metric.value) for metric in client.get_metric_history(run.info.run_id, key)]
        for key in run.data.metrics
    }


@pytest.fixture(scope="module")
def tracked(project, tmp_path_factory) -> dict:
    """Two tracked runs, killed (past their epoch-2 row; at epoch 1, before any checkpoint) and resumed, and the
    --check refusals, the processes of each round started together; what the stores held between kill and resume."""
    root = tmp_path_factory.mktemp("trackers")
    runs = {"resumed": root / "resumed-runs", "restarted": root / "restarted-runs"}
    killed = {"resumed": 2, "restarted": 1}
    in_project = sorted(path.name for path in project.iterdir())  # the session's project: other tests write there too
    started = {
        name: start(
            [
                "train",
                *TRACKED,
                f"callbacks=[{{class: fixtures/probes.py:KillOnce, epoch: {killed[name]}, marker: {root / name}, drain: true}},"
                " {class: fixtures/probes.py:WeightsAsImages}, {class: expresso.callbacks.ImageGrid, tensor: weights, max_images: 4}]",
                "--runs-root",
                runs[name],
            ],
            project,
        )
        for name in runs
    }
    check = ["config", "--check", "configs/experiments/tiny.yaml"]
    started["unknown"] = start([*check, "loggers=[csv, tensorbord]"], project)
    started["no-extra"] = start([*check, "loggers=[csv, mlflow]"], project, WITHOUT_MLFLOW)
    started["twice"] = start(
        [*check, "loggers=[tensorboard, {class: expresso.loggers.TensorBoardLogger, log_dir: x}]"], project
    )
    results = {name: finish(process) for name, process in started.items()}
    run_dirs, before = {}, {}
    for name in runs:  # a SIGKILL at the end of an epoch, after the trackers' row, before its checkpoint
        assert results[name].returncode == -9, results[name].stderr
        run_dirs[name] = only_run_dir(runs[name], "tiny")
        client, found = mlflow_runs(runs[name])
        run = found[run_dirs[name].name]  # a SIGKILL leaves no word: RUNNING
        history = client.get_metric_history(run.info.run_id, "val/acc")
        before[name] = (run.info.status, run.info.run_id, [metric.step for metric in history])
    assert not (run_dirs["restarted"] / "checkpoints" / "last.ckpt").exists()
    assert "val/acc" in tensorboard_events(run_dirs["restarted"]).Tags()["scalars"]  # the killed start's epoch 1
    resumed = {
        "resumed": start(["resume", run_dirs["resumed"]], project),
        # from the beginning (no checkpoint), with another learning rate: the killed start's values are not the run's
        "restarted": start(["resume", run_dirs["restarted"], "optimizer.lr=0.002"], project),
    }
    results.update({f"{name} again": finish(process) for name, process in resumed.items()})
    assert sorted(path.name for path in project.iterdir()) == in_project  # nothing in the working directory
    return {"results": results, "runs": runs, "run_dirs": run_dirs, "before": before}


def test_tensorboard_and_mlflow_hold_the_runs_values_and_a_run_killed_past_its_checkpoint_resumes_as_one_curve(
    tracked, tmp_path
):
    results, runs_root, run_dir = tracked["results"], tracked["runs"]["resumed"], tracked["run_dirs"]["resumed"]
    status, run_id, steps = tracked["before"]["resumed"]
    assert (status, steps) == ("RUNNING", [10, 20])  # killed holding epoch 2, which no checkpoint counts
    assert results["resumed again"].returncode == 0, results["resumed again"].stderr

    # metrics.csv: each row once (the resume rebuilt it from the checkpoint and wrote epoch 2 again)
    expected = with_final(run_dir)
    assert [step for step, _ in expected["train/batch_loss"]] == [3, 6, 9, 12, 15, 18]
    assert {key: [step for step, _ in points] for key, points in expected.items() if key != "train/batch_loss"} == {
        **{key: [10, 20] for key in ("lr", "train/loss", "train/acc", "val/loss", "val/acc")},
        **{f"final/{key}": [20] for key in ("val/loss", "val/acc", "test/loss", "test/acc")},
    }

    # TensorBoard: every value at its step, each step once: the resume hid what the killed process wrote past its
    # checkpoint (epoch 2's rows, flushed before the kill), and wrote it again; the final metrics at the last step
    assert tensorboard_curves(run_dir) == as_float32(expected)

    # MLflow: one run (the resume continued the killed one), finished, with the config, the values at their steps
    # (none twice), the final metrics, config.yaml
    client, found = mlflow_runs(runs_root)
    assert list(found) == [run_dir.name]
    run = found[run_dir.name]
    assert (run.info.run_id, run.info.status) == (run_id, "FINISHED")
    assert run.data.tags["expresso.run_dir"] == str(run_dir.resolve())
    assert run.data.params == flattened(read_config(run_dir), str)  # MLflow params are text
    assert mlflow_curves(client, run) == expected
    assert [artifact.path for artifact in client.list_artifacts(run.info.run_id)] == [
        "config.yaml",
        "images",
        "model_summary.txt",
    ]
    downloaded = client.download_artifacts(run.info.run_id, "config.yaml", str(tmp_path))
    assert Path(downloaded).read_text() == (run_dir / "config.yaml").read_text()

    # ImageGrid's grid of each epoch: in TensorBoard at the epoch's step, once (the resume hid the killed process's
    # epoch 2 and wrote it again), as the PNG holds it; in MLflow as images/<file>, the file's bytes
    grids = [run_dir / "images" / f"weights-epoch00{epoch}.png" for epoch in (1, 2)]
    assert grids[0].read_bytes() != grids[1].read_bytes()  # the weights the grid draws changed
    events = tensorboard_events(run_dir)
    assert [event.step for event in events.Images("images/weights")] == [10, 20]
    assert [png_pixels(event.encoded_image_string) for event in events.Images("images/weights")] == [
        png_pixels(grid.read_bytes()) for grid in grids
    ]
    images = [artifact.path for artifact in client.list_artifacts(run.info.run_id, "images")]
    assert images == ["images/weights-epoch001.png", "images/weights-epoch002.png"]
    for path, grid in zip(images, grids):
        assert Path(client.download_artifacts(run.info.run_id, path, str(tmp_path))).read_bytes() == grid.read_bytes()

    # the model summary: the table the log shows, once in each (TensorBoard's TEXT at the start, not again at resume)
    summary = Path(client.download_artifacts(run.info.run_id, "model_summary.txt", str(tmp_path))).read_text()
    assert summary.startswith("model 'model' (") and summary in (run_dir / "log.txt").read_text()
    texts = events.Tensors("model_summary/text_summary")
    assert [event.step for event in texts] == [0]
    assert texts[0].tensor_proto.string_val == ["".join(f"    {line}" for line in summary.splitlines(True)).encode()]


def test_a_run_killed_before_its_first_checkpoint_and_restarted_is_one_mlflow_run_and_one_tensorboard_curve(tracked):
    results, runs_root, run_dir = tracked["results"], tracked["runs"]["restarted"], tracked["run_dirs"]["restarted"]
    status, killed_id, steps = tracked["before"]["restarted"]
    assert (status, steps) == ("RUNNING", [10])
    assert results["restarted again"].returncode == 0, results["restarted again"].stderr
    expected = with_final(run_dir)
    assert read_config(run_dir)["optimizer"]["lr"] == 0.002

    # TensorBoard: the restart's values only (the killed start's event file is gone: its scalars, and its
    # hyperparameters, which TensorBoard would keep as the first ones it saw), the restart's learning rate
    assert [path.name.startswith("events.out.tfevents.") for path in (run_dir / "tensorboard").iterdir()] == [True]
    assert tensorboard_curves(run_dir) == as_float32(expected)
    assert tensorboard_hparams(run_dir) == {
        key: float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else value
        for key, value in flattened(read_config(run_dir), hparam).items()
    }

    # MLflow: one run for the run folder, the restart's (params: its config; its values, none of the killed start's)
    client, found = mlflow_runs(runs_root)
    run = found[run_dir.name]
    assert list(found) == [run_dir.name] and run.info.run_id != killed_id
    assert run.info.status == "FINISHED"
    assert run.data.params == flattened(read_config(run_dir), str)  # MLflow params are text
    assert mlflow_curves(client, run) == expected
    # the killed start's run: ended KILLED, pointing at the restart, deleted (restorable), its epoch-1 values kept
    _, deleted = mlflow_runs(runs_root, deleted=True)
    killed = deleted[run_dir.name]
    assert (killed.info.run_id, killed.info.status) == (killed_id, "KILLED")
    assert killed.data.tags["expresso.restarted_as"] == run.info.run_id
    assert [metric.step for metric in client.get_metric_history(killed_id, "val/acc")] == [10]
    said = (
        f"MLflow run {killed_id}, left by this run's start that was killed before its first checkpoint, is marked "
        f"KILLED and deleted (`mlflow runs restore --run-id {killed_id}` brings it back); the restart logs to MLflow "
        f"run {run.info.run_id}"
    )
    assert said in results["restarted again"].stderr.splitlines()


def test_an_unknown_logger_a_missing_extra_and_a_logger_class_listed_twice_are_one_line_at_check(tracked):
    results = tracked["results"]
    assert one_line_error(results["unknown"]) == (
        "expresso: error: command line: loggers.1: unknown logger 'tensorbord'; expected one of csv, tensorboard, mlflow,"
        " clearml, sacred, comet, wandb or a component; did you mean 'tensorboard'?"
    )
    assert one_line_error(results["no-extra"]) == (
        "expresso: error: command line: loggers.1: the mlflow logger needs the mlflow package, which is not installed: "
        "pip install torch-expresso[mlflow]"
    )
    assert one_line_error(results["twice"]) == (
        "expresso: error: command line: loggers.1: a second TensorBoardLogger, as loggers.0: a run's checkpoints keep "
        "each logger's state under its class name, so a class is listed once (for a second destination of one kind, "
        "list a subclass of TensorBoardLogger)"
    )
