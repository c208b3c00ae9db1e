"""The commands of docs/trackers.md that open TensorBoard and the MLflow UI on the runs folder, run as written on a trained run.

They serve until stopped, so test_docs.py leaves them here: each starts in
the folder that holds ``runs/`` (the page's line, plus a free localhost
port), must show the tracked run through its own HTTP API (the routes its web
page reads: TensorBoard's scalar tags and values, MLflow's runs search and
metric history), and is stopped. The page's screenshots of both come
from scripts/screenshots.py, which starts the same two commands.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from cli_runs import EXAMPLES, finish, only_run_dir, read_history, start
from test_docs import blocks
from test_readme import SERVERS

pytestmark = pytest.mark.slow  # make test-slow: it installs the tensorboard and mlflow extras these servers are

EPOCHS = 2


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url: str, body: dict | None = None) -> dict:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as reply:
        return json.load(reply)


@contextlib.contextmanager
def serving(line: str, cwd: Path, ready: str) -> Iterator[str]:
    """The page's line with a free port, until the block ends; yields its base URL once ``ready`` answers."""
    port = free_port()
    command = [*shlex.split(line), "--host", "127.0.0.1", "--port", str(port)]
    command[0] = str(Path(sys.executable).with_name(command[0]))  # this environment's console script
    log = cwd / f"{Path(command[0]).name}.log"
    with log.open("wb") as out:  # its own session: mlflow ui forks workers, stopped with it
        process = subprocess.Popen(command, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert process.poll() is None, f"{line} exited with status {process.returncode}:\n{log.read_text()}"
            with contextlib.suppress(OSError):
                urllib.request.urlopen(base + ready, timeout=5).read()
                break
            assert time.monotonic() < deadline, f"{line} did not answer {ready} within 120 s:\n{log.read_text()}"
            time.sleep(0.5)
        yield base
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def server_lines() -> list[str]:
    """The lines of docs/trackers.md's ```bash blocks that start a tracker's server, their comments cut off."""
    return [
        line.split("#")[0].strip()
        for page, body in blocks("bash")
        if page == "trackers.md"
        for line in body.splitlines()
        if line.startswith(SERVERS)
    ]


def test_the_trackers_page_opens_tensorboard_and_the_mlflow_ui_on_the_runs_folder(tmp_path):
    lines = server_lines()
    assert [line.split()[0] for line in lines] == ["tensorboard", "mlflow"]
    tensorboard_line, mlflow_line = lines
    config = EXAMPLES / "configs/experiments/digits_mlp_tracked.yaml"
    trained = finish(
        start(
            ["train", config, f"trainer.max_epochs={EPOCHS}", "trainer.limit_batches=2", "--runs-root", "runs"],
            cwd=tmp_path,
        )
    )
    assert trained.returncode == 0, trained.stderr
    run_dir = only_run_dir(tmp_path / "runs", "digits-mlp-tracked")
    val_acc = [(int(row["step"]), float(row["val/acc"])) for row in read_history(run_dir) if row["val/acc"]]
    assert [step for step, _ in val_acc] == [2, 4]  # two batches an epoch, val/acc once per epoch

    with serving(tensorboard_line, tmp_path, "/data/plugin/scalars/tags") as base:
        run = f"digits-mlp-tracked/{run_dir.name}/tensorboard"  # TensorBoard names a run by its folder under runs/
        assert "val/acc" in get(f"{base}/data/plugin/scalars/tags")[run]
        query = urllib.parse.urlencode({"run": run, "tag": "val/acc"})
        scalars = get(f"{base}/data/plugin/scalars/scalars?{query}")  # [wall time, step, value]; kept as float32
        assert [(step, value) for _, step, value in scalars] == [(s, float(np.float32(v))) for s, v in val_acc]

    with serving(mlflow_line, tmp_path, "/health") as base:
        query = urllib.parse.urlencode({"experiment_name": "digits-mlp-tracked"})
        experiment = get(f"{base}/api/2.0/mlflow/experiments/get-by-name?{query}")["experiment"]["experiment_id"]
        [found] = get(f"{base}/api/2.0/mlflow/runs/search", {"experiment_ids": [experiment]})["runs"]
        assert found["info"]["run_name"] == run_dir.name and found["info"]["status"] == "FINISHED"
        query = urllib.parse.urlencode({"run_id": found["info"]["run_id"], "metric_key": "val/acc"})
        history = get(f"{base}/api/2.0/mlflow/metrics/get-history?{query}")["metrics"]
        assert [(m["step"], m["value"]) for m in history] == val_acc
