"""ClearML and Sacred through the CLI, each read back from the files its own library wrote: ClearML's offline
session (task.json, metrics.jsonl, and the zip an import reads) and Sacred's FileStorageObserver (run.json,
config.json, metrics.json) hold the run's config, metrics.csv's values at its steps, config.yaml and the status; a
run killed past its checkpoint and resumed continues the same ClearML task and Sacred run with each step once; nothing
is written to the home folder or the temporary folder."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest
from cli_runs import curves, finish, flattened, only_run_dir, read_config, start

# make test-slow: it needs the clearml and sacred extras, which it installs (and ClearML's import takes seconds)
pytestmark = pytest.mark.slow

TRACKED = [
    "configs/experiments/tiny.yaml",
    "loggers=[csv, clearml, sacred]",
    "trainer.log_every_n_steps=3",  # 10 steps an epoch: step rows at 3, 6, 9, then 12, 15, 18
]


def clearml_session(run_dir: Path) -> Path:
    """The run's one offline session folder, ``clearml/offline/<task id>/``."""
    [session] = [path for path in (run_dir / "clearml" / "offline").iterdir() if path.is_dir()]
    return session


def clearml_curves(metrics_jsonl: str) -> dict[str, list[tuple[int, float]]]:
    """ClearML's scalar events (a JSON list of events per line) as series named ``title/series`` (``title`` alone
    when both are the same), in the order they were written."""
    series: dict[str, list[tuple[int, float]]] = {}
    for line in metrics_jsonl.splitlines():
        for event in json.loads(line):
            assert event["type"] in ("training_stats_scalar", "training_debug_image")
            if event["type"] != "training_stats_scalar":
                continue
            name = event["metric"] if event["variant"] == event["metric"] else f"{event['metric']}/{event['variant']}"
            series.setdefault(name, []).append((event["iter"], event["value"]))
    return series


def clearml_images(metrics_jsonl: str) -> list[tuple[str, int, bytes]]:
    """ClearML's image events as (``title/series``, iteration, the bytes of the copy in the session), in order."""
    return [
        (f"{event['metric']}/{event['variant']}", event["iter"], Path(event["url"]).read_bytes())
        for line in metrics_jsonl.splitlines()
        for event in json.loads(line)
        if event["type"] == "training_debug_image"
    ]


def sacred_curves(run: Path) -> dict[str, list[tuple[int, float]]]:
    metrics = json.loads((run / "metrics.json").read_text())
    return {name: list(zip(entry["steps"], entry["values"])) for name, entry in metrics.items()}


def test_clearml_and_sacred_hold_the_runs_values_and_a_run_killed_past_its_checkpoint_resumes_in_the_same_runs(
    project, tmp_path
):
    marker, runs_root = tmp_path / "killed-once", tmp_path / "runs"
    home, temp = tmp_path / "home", tmp_path / "tmp"
    home.mkdir()
    temp.mkdir()
    isolated = {"HOME": str(home), "TMPDIR": str(temp)}  # where ClearML writes when not told otherwise
    kill = (
        f"callbacks=[{{class: fixtures/probes.py:KillOnce, epoch: 2, marker: {marker}}},"
        " {class: fixtures/probes.py:WeightsAsImages}, {class: expresso.callbacks.ImageGrid, tensor: weights, max_images: 4}]"
    )
    killed = finish(start(["train", *TRACKED, kill, "--runs-root", runs_root], project, isolated))
    # SIGKILL at epoch 2, after the loggers flushed, before its checkpoint
    assert killed.returncode == -9, killed.stderr
    run_dir = only_run_dir(runs_root, "tiny")

    # a SIGKILL leaves no word: still running, holding epoch 2, which no checkpoint counts
    session = clearml_session(run_dir)
    task = json.loads((session / "task.json").read_text())
    assert task["tags"] == ["status:running"]
    assert [step for step, _ in clearml_curves((session / "metrics.jsonl").read_text())["val/acc"]] == [10, 20]
    sacred_run = run_dir / "sacred" / "1"
    assert json.loads((sacred_run / "run.json").read_text())["status"] == "RUNNING"
    assert [step for step, _ in sacred_curves(sacred_run)["val/acc"]] == [10, 20]
    started = json.loads((sacred_run / "run.json").read_text())["start_time"]

    resumed = finish(start(["resume", run_dir], project, isolated))
    assert resumed.returncode == 0, resumed.stderr
    assert "ClearML" not in resumed.stdout + resumed.stderr  # its console lines are kept quiet

    # metrics.csv: each row once (the resume rebuilt it from the checkpoint and wrote epoch 2 again)
    expected = curves(run_dir)
    assert [step for step, _ in expected["train/batch_loss"]] == [3, 6, 9, 12, 15, 18]
    assert {key: [step for step, _ in points] for key, points in expected.items() if key != "train/batch_loss"} == {
        key: [10, 20] for key in ("lr", "train/loss", "train/acc", "val/loss", "val/acc")
    }
    config = read_config(run_dir)

    # ClearML: the same task (one session), the values at their steps with none twice (the resume dropped what the
    # killed process wrote past its checkpoint), the config as hyperparameters, config.yaml, the ending as a tag;
    # the zip an import reads holds the same
    assert clearml_session(run_dir) == session
    metrics_jsonl = (session / "metrics.jsonl").read_text()
    assert clearml_curves(metrics_jsonl) == expected
    task = json.loads((session / "task.json").read_text())
    assert task["id"] == session.name
    assert (task["project_name"], task["name"], task["tags"]) == ("tiny", run_dir.name, ["status:completed"])
    assert {key: entry["value"] for key, entry in task["hyperparams"]["General"].items()} == {
        key: "" if value is None else str(value)  # ClearML's text of None is empty
        for key, value in flattened(config).items()
    }
    assert task["configuration"]["config.yaml"]["value"] == (run_dir / "config.yaml").read_text()
    [artifact] = task["execution"]["artifacts"]
    assert artifact["key"] == "config.yaml"
    assert Path(artifact["uri"]).read_text() == (run_dir / "config.yaml").read_text()
    with zipfile.ZipFile(f"{session}.zip") as archive:
        assert archive.read("metrics.jsonl").decode() == metrics_jsonl
        assert json.loads(archive.read("task.json")) == task

    # Sacred: the same run (the resume took its folder up again), the values at their steps with none twice, the
    # config, config.yaml, COMPLETED, the first start time
    assert sorted(path.name for path in (run_dir / "sacred").iterdir()) == ["1"]
    assert sacred_curves(sacred_run) == expected
    record = json.loads((sacred_run / "run.json").read_text())
    assert (record["status"], record["command"], record["experiment"]["name"]) == ("COMPLETED", "fit", "tiny")
    assert record["start_time"] == started
    assert (sacred_run / "config.yaml").read_text() == (run_dir / "config.yaml").read_text()
    assert json.loads((sacred_run / "config.json").read_text()) == config

    # ImageGrid's grid of each epoch and the model summary, in both: ClearML's debug images at the epochs' steps, each
    # once with its own copy (the resume's epoch 2 replaced the killed process's), the summary as a configuration
    # object; Sacred's artifacts (listed once) and its run's info
    grids = [(run_dir / "images" / f"weights-epoch00{epoch}.png").read_bytes() for epoch in (1, 2)]
    assert grids[0] != grids[1]  # the weights the grid draws changed
    assert clearml_images(metrics_jsonl) == [("images/weights", 10, grids[0]), ("images/weights", 20, grids[1])]
    summary = task["configuration"]["model_summary"]["value"]
    assert summary.startswith("model 'model' (") and summary in (run_dir / "log.txt").read_text()
    assert record["artifacts"] == ["config.yaml", "weights-epoch001.png", "weights-epoch002.png"]
    assert [(sacred_run / f"weights-epoch00{epoch}.png").read_bytes() for epoch in (1, 2)] == grids
    assert json.loads((sacred_run / "info.json").read_text())["model_summary"] == summary

    # ClearML's cache and last-task file are the run folder's
    assert ".clearml" not in {path.name for path in home.iterdir()}
    assert "clearml_cache" not in {path.name for path in temp.iterdir()}
