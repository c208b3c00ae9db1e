"""One writer per run folder: ``train`` and ``resume`` hold the folder's lock; a second writer is refused, a dead one frees it.

Real processes on real files. The writer that wins the lock keeps it, waiting
at its fit's start (fixtures/holder.py), until the test has seen every other
writer refused; so who is refused does not depend on how fast anyone trains.

- a training into ``--run-id`` killed with SIGKILL (fixtures/killer.py) while it
  holds the lock leaves no stale lock: of two ``expresso resume`` of its run
  started at once, one trains to the end, the other exits 2 with one line
  naming the first's pid and host, and metrics.csv has the rows of one run;
- eight ``expresso train --run-id job42`` at once (three outside the slow
  target): one trains, the others exit 2 with the same one line each (before
  the lock: a FileExistsError traceback, exit 1).
"""

from __future__ import annotations

import csv
import re
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest
from cli_runs import finish, one_line_error, read_record, start
from test_resume import make_project

EXPERIMENT = """\
extends: ../defaults/classification.yaml
name: owned
model: {class: expresso.models.MLP, in_features: 64, hidden: [32]}
trainer: {max_epochs: 2, batch_size: 128, log_every_n_steps: 1000}
callbacks:
  - {class: fixtures/killer.py:KillAt}
  - {class: fixtures/holder.py:HoldUntil}
"""
CONFIG = "configs/experiments/owned.yaml"
KILL_AT = 12  # 10 steps an epoch: last.ckpt holds epoch 1 when the process dies


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    return make_project(tmp_path_factory, "owned", EXPERIMENT)


def refusal(run_dir: Path, holder: subprocess.Popen) -> re.Pattern:
    """The one line a refused writer prints, naming the process that holds ``run_dir``."""
    return re.compile(
        re.escape(f"expresso: error: {run_dir}: another process writes this run folder (pid {holder.pid} on host ")
        + re.escape(socket.gethostname())
        + r" since \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d{4}\); wait for it to end"
    )


def refused_while_one_holds(commands: list[list], project: Path, release: Path) -> tuple[subprocess.Popen, list]:
    """Start ``commands`` at once, each holding at its fit's start until ``release`` exists; release once all but one ended.

    Asserts that one exited 0 and every other 2; returns the one that trained and the others' results.
    """
    processes = [start(args, project, {"EXPRESSO_TEST_HOLD_UNTIL": str(release)}) for args in commands]
    deadline = time.monotonic() + 60  # HoldUntil's own limit: without the lock, every writer holds until then
    while sum(p.poll() is not None for p in processes) < len(processes) - 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    release.touch()
    results = {p: finish(p) for p in processes}
    codes = sorted(result.returncode for result in results.values())
    assert codes == [0] + [2] * (len(commands) - 1), [result.stderr[-2000:] for result in results.values()]
    [winner] = [p for p, result in results.items() if result.returncode == 0]
    return winner, [result for p, result in results.items() if p is not winner]


def test_of_two_resumes_of_a_run_whose_writer_was_killed_one_trains_and_the_other_is_refused(project, tmp_path):
    killed = finish(
        start(
            ["train", CONFIG, "--runs-root", tmp_path, "--run-id", "r1"],
            project,
            {"EXPRESSO_TEST_KILL_AT_STEP": str(KILL_AT)},
        )
    )
    run_dir = tmp_path / "owned" / "r1"
    assert killed.returncode == -signal.SIGKILL, killed.stderr

    winner, [loser] = refused_while_one_holds([["resume", run_dir], ["resume", run_dir]], project, tmp_path / "go")
    assert refusal(run_dir, winner).fullmatch(one_line_error(loser))
    with (run_dir / "metrics.csv").open(newline="") as handle:
        epochs = [row["epoch"] for row in csv.DictReader(handle)]
    assert epochs == ["1", "2"]  # one row per epoch, as an uninterrupted run writes them: no second writer's rows
    record = read_record(run_dir)
    assert record["status"] == "completed" and len(record["resumes"]) == 1


# Three in CI (each process costs seconds of torch import on two cores); the eight of the report in the slow target.
# Slow (~16 s with 3 writers): CI keeps the two-resumes test above; `make test-slow` runs 3 and 8 trainings at once.
@pytest.mark.slow
@pytest.mark.parametrize("writers", [3, 8])
def test_trainings_into_one_run_id_at_once_one_trains_and_the_others_are_refused_in_one_line(
    project, tmp_path, writers
):
    command = ["train", CONFIG, "--dev-run", "1", "--runs-root", tmp_path, "--run-id", "job42"]
    winner, refused = refused_while_one_holds([command] * writers, project, tmp_path / "go")
    run_dir = tmp_path / "owned" / "job42"
    pattern = refusal(run_dir, winner)
    assert [bool(pattern.fullmatch(one_line_error(result))) for result in refused] == [True] * (writers - 1)
    assert read_record(run_dir)["status"] == "completed" and read_record(run_dir)["pid"] == winner.pid
    assert sorted(path.name for path in (tmp_path / "owned").iterdir()) == ["job42"]
