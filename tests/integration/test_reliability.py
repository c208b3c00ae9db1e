"""Surviving preemption, kills during a checkpoint write, damaged checkpoints and restarts: real processes, real signals.

One config (shuffled batches, dropout, step checkpoints) trains once
undisturbed (A); every other run is disturbed in one way, then finished,
and must end with A's weights, bit for bit:

- SIGTERM mid-epoch (and SIGUSR1 during the checkpoint it triggers): exit 75,
  run.json ``interrupted``, ``expresso resume`` finishes it;
- SIGKILL while the temporary checkpoint file is half written (a test hook
  pauses the write): the previous last.ckpt is intact, ``expresso runs``
  shows the run ``crashed``, resume finishes it;
- last.ckpt with one flipped byte, or truncated: resume says the file is
  damaged and continues from previous.ckpt;
- a job restarted with the same command (``--run-id --resume-if-exists``)
  continues its run; run again once it completed, it has nothing to do (exit 0)
  and overwrites nothing without ``--force``;
- ``trainer.requeue`` calls ``scontrol requeue $SLURM_JOB_ID`` (a fake
  scontrol on PATH records its arguments).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from second_try import differences_twice
from test_resume import differences, end_differences, load, make_project, only_run_dir, read_record

EXPERIMENT = textwrap.dedent(
    """\
    extends: ../defaults/classification.yaml
    name: sturdy
    model: {class: expresso.models.MLP, in_features: 64, hidden: [64], dropout: 0.1}
    trainer: {max_epochs: 3, batch_size: 128, log_every_n_steps: 5}
    dataloader: {shuffle: true}
    callbacks:
      - {class: expresso.callbacks.Checkpoint, monitor: val/acc, mode: max, every_n_steps: 4}
      - {class: fixtures/signals.py:SignalAt}
      - {class: fixtures/limits.py:FileSizeLimitAt}
    """
)
SIGNAL_AT = 15  # 10 steps per epoch: mid-epoch 2; the preemption checkpoint holds step 15
PAUSE_IN_WRITE = 5  # the 5th checkpoint write (steps 4, 8, epoch 1 end, 12, then 16) is killed half written


def run(args, project, env=None, wait=True):
    process = subprocess.Popen(
        [sys.executable, "-m", "expresso", *map(str, args)],
        cwd=project,
        env={**os.environ, **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    if not wait:
        return process
    stdout, stderr = process.communicate(timeout=300)
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def same_end(a_dir: Path, b_dir: Path) -> list[str]:
    """Where the final checkpoints differ in weights, optimizer states or position; every other difference is printed (shown on failure)."""
    a, b = load(a_dir / "checkpoints" / "last.ckpt"), load(b_dir / "checkpoints" / "last.ckpt")
    print(f"{b_dir.name}: every difference from the uninterrupted run: {differences(a, b)}")
    return (
        differences(a["models"], b["models"])
        + differences(a["optimizers"], b["optimizers"])
        + differences(a["loop"], b["loop"])
    )


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    project = make_project(tmp_path_factory, "sturdy", EXPERIMENT)
    fake = project / "bin"
    fake.mkdir()
    (fake / "scontrol").write_text(f'#!/bin/sh\necho "$@" >> {project / "scontrol.log"}\n')
    (fake / "scontrol").chmod(0o755)
    return project


@pytest.fixture(scope="module")
def uninterrupted(project):
    result = run(["train", "configs/experiments/sturdy.yaml", "--runs-root", project / "A"], project)
    assert result.returncode == 0, result.stderr
    return only_run_dir(project / "A", "sturdy")


@pytest.fixture(scope="module")
def preempted(project):
    """A run sent SIGTERM at step 15 (SIGUSR1 during its checkpoint), under SLURM with requeue on."""
    env = {
        "EXPRESSO_TEST_SIGNAL_AT_STEP": str(SIGNAL_AT),
        "SLURM_JOB_ID": "4242",
        "PATH": f"{project / 'bin'}{os.pathsep}{os.environ['PATH']}",
    }
    result = run(
        ["train", "configs/experiments/sturdy.yaml", "trainer.requeue=true", "--runs-root", project / "B"], project, env
    )
    run_dir = only_run_dir(project / "B", "sturdy")
    return {
        "result": result,
        "run_dir": run_dir,
        "record": read_record(run_dir),
        "loop": load(run_dir / "checkpoints" / "last.ckpt")["loop"],
    }


def test_sigterm_checkpoints_at_the_step_boundary_marks_interrupted_and_exits_75(preempted, project):
    assert preempted["result"].returncode == 75, preempted["result"].stderr
    assert preempted["record"]["status"] == "interrupted" and preempted["record"]["interrupted_by"] == "SIGTERM"
    assert preempted["loop"] == {
        "epoch": 1,
        "batch_index": 5,
        "step": SIGNAL_AT,
        "stage": 0,
        "stage_epoch": 1,
        "stage_stopped": False,
        "stops": {},
        "stop_fit": False,
    }
    assert (
        "stopped by SIGTERM" in preempted["result"].stderr
        and "resume with: expresso resume" in preempted["result"].stderr
    )
    assert (project / "scontrol.log").read_text() == "requeue 4242\n"  # trainer.requeue under SLURM


@pytest.mark.slow  # test_resume.py's SIGKILL resume and the SIGTERM test run in CI
def test_a_preempted_run_resumes_to_the_uninterrupted_runs_weights_bit_for_bit(preempted, uninterrupted, project):
    result = run(["resume", preempted["run_dir"]], project)
    assert result.returncode == 0, result.stderr
    assert read_record(preempted["run_dir"])["status"] == "completed"
    assert same_end(uninterrupted, preempted["run_dir"]) == []
    assert (preempted["run_dir"] / "metrics.csv").read_text() == (uninterrupted / "metrics.csv").read_text()


@pytest.mark.slow  # the kill-anywhere test kills inside every kind of write
def test_sigkill_during_a_checkpoint_write_leaves_the_previous_one_and_resume_finishes(uninterrupted, project):
    marker = project / "paused"
    process = run(
        ["train", "configs/experiments/sturdy.yaml", "--runs-root", project / "C"],
        project,
        {"EXPRESSO_TEST_PAUSE_DURING_WRITE": f"{PAUSE_IN_WRITE}:{marker}"},
        wait=False,
    )
    deadline = time.monotonic() + 120
    while not marker.exists():
        assert process.poll() is None and time.monotonic() < deadline, process.communicate()[1]
        time.sleep(0.05)
    process.kill()  # SIGKILL, half way through writing the temporary file
    process.communicate()
    run_dir = only_run_dir(project / "C", "sturdy")
    folder = run_dir / "checkpoints"
    assert [p.name for p in folder.glob(".last.ckpt.*.tmp")], "the half-written temporary file is there"
    assert load(folder / "last.ckpt")["loop"]["step"] == 12  # the write before the killed one, whole and verified
    table = run(["runs", project / "C"], project)
    assert "crashed" in table.stdout.splitlines()[1], table.stdout
    result = run(["resume", run_dir], project)
    assert result.returncode == 0, result.stderr
    assert same_end(uninterrupted, run_dir) == []


@pytest.mark.slow  # the unit tests of the manifest and the checkpoint fuzz tests run in CI
@pytest.mark.parametrize("damage", ["flipped byte", "truncated"])
def test_a_damaged_last_ckpt_is_detected_and_resume_falls_back_to_the_previous_one(
    damage, uninterrupted, project, tmp_path
):
    killed = project / f"D-{damage.replace(' ', '-')}"
    result = run(
        ["train", "configs/experiments/sturdy.yaml", "--runs-root", killed],
        project,
        {"EXPRESSO_TEST_SIGNAL_AT_STEP": "18"},
    )
    assert result.returncode == 75
    run_dir = only_run_dir(killed, "sturdy")
    last = run_dir / "checkpoints" / "last.ckpt"
    data = bytearray(last.read_bytes())
    if damage == "flipped byte":
        data[len(data) // 2] ^= 0x01
    else:
        data = data[: len(data) * 3 // 4]
    last.write_bytes(bytes(data))

    result = run(["resume", run_dir], project)
    assert result.returncode == 0, result.stderr
    assert f"{last}: damaged" in result.stderr
    assert (
        f"resuming from the previous checkpoint instead: {run_dir / 'checkpoints' / 'previous.ckpt'} (step 16)"
        in result.stderr
    )
    assert same_end(uninterrupted, run_dir) == []


@pytest.mark.slow  # the kill-anywhere test restarts 80 jobs this way; test_one_writer.py runs --run-id jobs in CI
def test_a_restarted_job_continues_its_run_and_a_completed_runs_rerun_is_a_no_op_unless_forced(uninterrupted, project):
    command = [
        "train",
        "configs/experiments/sturdy.yaml",
        "--runs-root",
        project / "E",
        "--run-id",
        "job-7",
        "--resume-if-exists",
    ]
    first = run(command, project, {"EXPRESSO_TEST_SIGNAL_AT_STEP": "7"})
    assert first.returncode == 75, first.stderr
    run_dir = project / "E" / "sturdy" / "job-7"
    again = run(command, project)  # what a requeued job runs: the same command
    assert again.returncode == 0, again.stderr
    assert "resuming the unfinished run" in again.stderr
    assert same_end(uninterrupted, run_dir) == []
    # Run again once more (a job script re-run after its run completed): nothing to do, said in one line, exit 0.
    done = run(command, project)
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"{run_dir}: holds a completed run; nothing to do (--force moves it aside and starts over)\n"
    assert same_end(uninterrupted, run_dir) == []
    forced = run([*command, "--force"], project)
    assert forced.returncode == 0, forced.stderr
    assert (
        read_record(run_dir)["status"] == "completed"
        and len(list((project / "E" / "sturdy").glob("job-7.replaced-*"))) == 1
    )


@pytest.mark.slow  # tests/unit/runs/test_atomic_write.py's full-disk write runs in CI
def test_a_checkpoint_write_that_fails_for_want_of_space_keeps_the_previous_one_and_fails_the_run_clearly(project):
    result = run(
        ["train", "configs/experiments/sturdy.yaml", "--runs-root", project / "G"],
        project,
        {"EXPRESSO_TEST_FSIZE_AT_STEP": "9"},
    )
    run_dir = only_run_dir(project / "G", "sturdy")
    last = run_dir / "checkpoints" / "last.ckpt"
    assert result.returncode == 1, result.stderr
    assert (
        f"expresso: the run failed: {last}: cannot write (File too large); the previous file is intact" in result.stderr
    )
    assert "Traceback" not in result.stderr
    record = read_record(run_dir)
    assert record["status"] == "failed"
    assert record["error"] == {
        "type": "CheckpointWriteError",
        "message": f"{last}: cannot write (File too large); the previous file is intact",
    }
    log = (
        run_dir / "log.txt"
    ).read_text()  # the traceback (the OSError behind it too), for whoever debugs it, only in the file
    assert "OSError: [Errno 27] File too large\n" in log
    assert (
        f"\nexpresso.engine.checkpoints.errors.CheckpointWriteError: {last}: cannot write (File too large); the previous file is intact\n"
        in log
    )
    assert (
        load(last)["loop"]["step"] == 8
    )  # the checkpoint before the failed one (step 10's end of epoch), whole and verified
    assert not list(last.parent.glob(".*.tmp"))  # the failed temporary file is gone


@pytest.mark.slow  # test_one_writer.py starts three trainings of one --run-id at once in CI
def test_four_runs_started_at_once_under_one_root_each_get_their_own_complete_folder(project):
    root = project / "F"
    processes = [
        run(["train", "configs/experiments/sturdy.yaml", "--dev-run", "2", "--runs-root", root], project, wait=False)
        for _ in range(4)
    ]
    results = [p.communicate(timeout=300) + (p.returncode,) for p in processes]
    assert [code for _, _, code in results] == [0] * 4, [err for _, err, _ in results]
    folders = sorted((root / "sturdy").iterdir())
    assert len(folders) == 4
    for folder in folders:
        assert read_record(folder)["status"] == "completed"
        assert load(folder / "checkpoints" / "last.ckpt")["loop"]["step"] == 2
    table = run(["runs", root], project).stdout.splitlines()
    assert len(table) == 5 and all(" completed " in line for line in table[1:])


def paused_in_the_first_checkpoint_write(args, project, marker: Path) -> subprocess.Popen:
    """A training stopped inside its first checkpoint write (step 4's last.ckpt, half written): nothing to resume from yet.

    SIGINT is reset to its default in the child, so Python turns it into KeyboardInterrupt even when the
    test runner was started with SIGINT ignored (a background job).
    """
    process = subprocess.Popen(
        [sys.executable, "-m", "expresso", *map(str, args)],
        cwd=project,
        env={**os.environ, "EXPRESSO_TEST_PAUSE_DURING_WRITE": f"1:{marker}"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.monotonic() + 120
    while not marker.exists():
        assert process.poll() is None and time.monotonic() < deadline, process.communicate()[1]
        time.sleep(0.05)
    return process


def killed_in_the_first_checkpoint_write(project, runs_root: Path) -> Path:
    """A training SIGKILLed half way through writing its first checkpoint: no checkpoint on disk, a temporary one."""
    process = paused_in_the_first_checkpoint_write(
        ["train", "configs/experiments/sturdy.yaml", "--runs-root", runs_root],
        project,
        project / f"paused-{runs_root.name}",
    )
    process.kill()
    process.communicate()
    return only_run_dir(runs_root, "sturdy")


def killed_before_the_first_checkpoint_and_resumed_again(project) -> tuple[Path, Path]:
    """The case once more (second_try.py): a fresh uninterrupted run, and a fresh run killed the same way and resumed."""
    reference = run(
        ["train", "configs/experiments/sturdy.yaml", "--runs-root", project / "A-again"], project, wait=False
    )
    run_dir = killed_in_the_first_checkpoint_write(project, project / "H-again")
    resumed = run(["resume", run_dir], project)
    assert resumed.returncode == 0, resumed.stderr
    assert reference.wait(timeout=300) == 0, reference.communicate()[1]
    return only_run_dir(project / "A-again", "sturdy"), run_dir


# Three trainings (~18 s): CI restarts killed runs in test_resume.py and test_one_writer.py; the restart before
# the first checkpoint runs here and through --resume-if-exists below, in `make test-slow`.
@pytest.mark.slow
def test_a_run_killed_before_its_first_checkpoint_resumes_from_the_beginning_and_ends_like_the_uninterrupted_run(
    uninterrupted, project
):
    run_dir = killed_in_the_first_checkpoint_write(project, project / "H")
    checkpoints = run_dir / "checkpoints"
    assert [p.name for p in checkpoints.iterdir() if not p.name.startswith(".last.ckpt.")] == []
    (run_dir / ".run.json.0123abcd.tmp").write_text("{")  # as a kill inside a run.json write leaves it
    kept = run_dir / ".notes.tmp"  # not a name the atomic writer makes: not expresso's to delete
    kept.write_text("mine")

    result = run(["resume", run_dir], project)
    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines()[0] == f"no checkpoint yet: starting {run_dir} again from the beginning"
    assert "resuming" not in result.stderr
    assert sorted(p.name for p in [*run_dir.glob(".*"), *checkpoints.glob(".*")]) == [".notes.tmp"]
    record = read_record(run_dir)
    assert record["status"] == "completed"
    (resumed,) = record["resumes"]
    assert {key: resumed[key] for key in ("checkpoint", "from", "restarted", "after", "overrides", "changes")} == {
        "checkpoint": None,
        "from": None,
        "restarted": True,
        "after": {"status": "running"},  # what SIGKILL left on disk
        "overrides": [],
        "changes": {},
    }

    def again() -> list[str]:
        return end_differences(*killed_before_the_first_checkpoint_and_resumed_again(project))

    assert differences_twice(lambda: end_differences(uninterrupted, run_dir), again) == []


@pytest.mark.slow  # ~14 s; CI keeps the SIGKILL restart above (same code path), `make test-slow` runs this one
def test_a_job_interrupted_before_its_first_checkpoint_says_so_and_its_restart_starts_it_again(uninterrupted, project):
    command = ["train", "configs/experiments/sturdy.yaml", "--runs-root", project / "I", "--run-id", "job-8"]
    command.append("--resume-if-exists")
    process = paused_in_the_first_checkpoint_write(command, project, project / "paused-I")
    process.send_signal(signal.SIGINT)  # Ctrl-C
    try:
        _, stderr = process.communicate(timeout=60)
    finally:
        process.kill()  # a no-op once it has ended; else it must not outlive the test
    run_dir = project / "I" / "sturdy" / "job-8"
    assert process.returncode == 130, stderr
    assert f"interrupted before the first checkpoint; resume with: expresso resume {run_dir}\n" in stderr
    assert read_record(run_dir)["status"] == "interrupted"

    unrecorded = project / "I" / "sturdy" / "job-9"  # a folder a kill left before its config.yaml was written
    (unrecorded / "checkpoints").mkdir(parents=True)
    started = run([*command[:-2], "job-9", "--resume-if-exists"], project, wait=False)
    again = run(command, project)  # what the requeued job runs: the same command
    _, stderr = started.communicate(timeout=300)
    assert started.returncode == 0, stderr  # nothing ran and nothing was recorded there: it starts in place
    assert stderr.splitlines()[0] == f"{unrecorded}: its start never finished (no run.json): starting it again"
    assert read_record(unrecorded)["status"] == "completed"
    assert again.returncode == 0, again.stderr
    assert again.stderr.splitlines()[0] == f"no checkpoint yet: starting {run_dir} again from the beginning"
    assert same_end(uninterrupted, run_dir) == []
    record = read_record(run_dir)
    assert record["status"] == "completed"
    assert [(r["from"], r["restarted"], r["after"]) for r in record["resumes"]] == [
        (None, True, {"status": "interrupted"})
    ]
