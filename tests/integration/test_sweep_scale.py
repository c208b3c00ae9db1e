"""Sweeps beyond one process (make test-slow): workers sharing one Optuna study on PostgreSQL, trials as submitit jobs.

The PostgreSQL server is a real one (initdb and pg_ctl of the Debian
packages), started on 127.0.0.1 in a temporary folder for the test and
stopped after it; the study's trials are asked for by two processes, a sweep
and a ``--worker``, and each runs exactly once.
"""

from __future__ import annotations

import csv
import os
import shutil
import socket
import subprocess
import tempfile
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_runs import EXAMPLES, finish, read_config, read_record, start

pytestmark = pytest.mark.slow
BASE = EXAMPLES / "configs" / "experiments" / "digits_mlp.yaml"
TINY = f"""\
    extends: {BASE}
    name: {{name}}
    trainer: {{{{max_epochs: 1, batch_size: 128, limit_batches: 2}}}}
    """


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def postgres() -> Iterator[str]:
    """A PostgreSQL server on loopback for this test; its URL (database ``sweeps``)."""
    initdb, pg_ctl = shutil.which("initdb"), shutil.which("pg_ctl")
    if not (initdb and pg_ctl):
        pytest.fail("PostgreSQL's initdb and pg_ctl are not on PATH (Debian: apt-get install postgresql)")
    # not under tmp_path: pytest's folders are private to this user, and the server may run as another
    folder = Path(tempfile.mkdtemp(prefix="expresso-pg-"))
    as_user: list[str] = []
    if os.geteuid() == 0:  # initdb refuses root: the server runs as the postgres user
        shutil.chown(folder, "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    port = _free_port()
    try:
        subprocess.run(
            [*as_user, initdb, "-D", folder / "data", "-U", "expresso", "--auth=trust"], check=True, capture_output=True
        )
        options = f"-p {port} -h 127.0.0.1 -k {folder}"
        subprocess.run(
            [*as_user, pg_ctl, "-D", folder / "data", "-o", options, "-l", folder / "log", "-w", "start"],
            check=True,
            capture_output=True,
        )
        import psycopg  # SQLAlchemy's driver for postgresql:// URLs (the postgres extra)

        with psycopg.connect(host="127.0.0.1", port=port, user="expresso", dbname="postgres", autocommit=True) as db:
            db.execute("CREATE DATABASE sweeps")
        yield f"postgresql://expresso@127.0.0.1:{port}/sweeps"
    finally:
        subprocess.run([*as_user, pg_ctl, "-D", folder / "data", "-m", "fast", "stop"], capture_output=True)
        shutil.rmtree(folder, ignore_errors=True)


def test_a_sweep_and_a_worker_share_one_study_on_postgresql_and_run_each_trial_once(postgres, tmp_path):
    import optuna

    (tmp_path / "shared.yaml").write_text(textwrap.dedent(TINY.format(name="shared")))
    command = ["sweep", "shared.yaml", "--search", "optuna", "--random", "optimizer.lr=log-uniform:1e-3,1e-2"]
    command += ["--trials", "4", "--storage", postgres, "--study", "shared", "--runs-root", "runs"]
    sweep = start(command, tmp_path)
    deadline = time.monotonic() + 300
    while "shared" not in optuna.study.get_all_study_names(storage=postgres):  # the sweep creates it; the worker joins
        assert sweep.poll() is None and time.monotonic() < deadline
        time.sleep(0.5)
    worker = start([*command, "--worker"], tmp_path)
    results = [finish(sweep), finish(worker)]
    assert [r.returncode for r in results] == [0, 0], [r.stderr for r in results]
    ran = [line.split(":")[0] for r in results for line in r.stderr.splitlines() if line.startswith("trial ")]
    assert sorted(ran) == ["trial 000", "trial 001", "trial 002", "trial 003"]  # each asked once, by one of the two
    study = optuna.load_study(study_name="shared", storage=postgres)
    assert [t.state for t in study.trials] == [optuna.trial.TrialState.COMPLETE] * 4
    folder = tmp_path / "runs" / "shared" / "sweep-shared"
    for trial in study.trials:
        run_dir = folder / f"trial-{trial.number:03d}"
        record = read_record(run_dir)
        assert (record["status"], record["resumes"]) == ("completed", [])
        assert read_config(run_dir)["optimizer"]["lr"] == trial.params["optimizer.lr"]
        assert trial.value == record["summary"]["final"]["metrics"]["val/acc"]


def test_trials_run_as_submitit_jobs_with_its_local_executor(tmp_path):
    pytest.importorskip("submitit")
    (tmp_path / "jobs.yaml").write_text(textwrap.dedent(TINY.format(name="jobs")))
    command = ["sweep", "jobs.yaml", "--grid", "trainer.seed=0,1", "--jobs", "2", "--launcher", "submitit-local"]
    result = finish(start([*command, "--slurm", "timeout_min=10", "--runs-root", "runs"], tmp_path))
    assert result.returncode == 0, result.stderr
    [folder] = (tmp_path / "runs" / "jobs").glob("sweep-*")
    rows = list(csv.DictReader((folder / "trials.csv").open()))
    assert [(r["trainer.seed"], r["status"]) for r in rows] == [("0", "completed"), ("1", "completed")]
    assert [read_config(folder / f"trial-{n:03d}")["trainer"]["seed"] for n in (0, 1)] == [0, 1]
    assert len(list((folder / "slurm").glob("*_result.pkl"))) == 2  # submitit's record of each job's result
