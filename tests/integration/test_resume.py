"""``expresso resume`` after a SIGKILL continues bit for bit: the run ends as if it had never stopped.

Three trainings of one config start together: A runs through, each B is
killed with SIGKILL (no handler, no flush, no cleanup) at the end of a
chosen optimizer step, by a user callback (fixtures/killer.py) that reads the
step from the environment. ``expresso resume`` then finishes each B without
that variable. The config has everything that makes resuming hard:
shuffled batches, dropout, a per-step LR schedule, early stopping, step
checkpoints, step rows in the history.

The model is built by fixtures/probes.py:seeded_model, which seeds torch just
before building it: expresso builds the model before it seeds (see
test_cli_train.py::test_config_yaml_of_a_run_reproduces_its_weights), so
without it A and B would differ from their first step and this test could
not tell a bad resume from a bad start.
"""

from __future__ import annotations

import json
import math
import os
import random
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from second_try import differences_twice

REPO = Path(__file__).resolve().parents[2]
EXAMPLE_CONFIGS = REPO / "examples" / "digits" / "configs"
FIXTURES = Path(__file__).parent / "fixtures"
KILL_AT_STEP_ENV = "EXPRESSO_TEST_KILL_AT_STEP"  # read by fixtures/killer.py

EPOCHS, BATCH_SIZE, EVERY_N_STEPS = 4, 128, 7
EXPERIMENT = textwrap.dedent(
    f"""\
    extends: ../defaults/classification.yaml
    name: resume
    model:
      class: fixtures/probes.py:seeded_model
      seed: 0
      build: {{class: expresso.models.MLP, _partial_: true, in_features: 64, hidden: [128, 64], dropout: 0.1, num_classes: 10}}
    scheduler: {{class: torch.optim.lr_scheduler.StepLR, step_size: 5, gamma: 0.9, interval: step}}
    trainer: {{max_epochs: {EPOCHS}, batch_size: {BATCH_SIZE}, log_every_n_steps: 3}}
    dataloader: {{shuffle: true}}
    callbacks:
      - {{class: expresso.callbacks.EarlyStopping, monitor: val/loss, patience: 5}}
      - {{class: expresso.callbacks.Checkpoint, monitor: val/acc, mode: max, every_n_steps: {EVERY_N_STEPS}}}
      - {{class: fixtures/killer.py:KillAt}}
    """
)
CASES = ("mid-epoch", "after-epoch-boundary")


def steps_per_epoch() -> int:
    from expresso.data import Digits

    return math.ceil(len(Digits(split="train")) / BATCH_SIZE)


def last_checkpoint_step(kill_step: int, per_epoch: int) -> int:
    """The step of the newest last.ckpt when the process dies at the end of ``kill_step``.

    Checkpoints are written every EVERY_N_STEPS steps and at every epoch end,
    on the training thread: when the killer (the last callback of ``kill_step``,
    never itself a checkpoint step, see choose_kill_steps) runs, the newest is on disk.
    """
    return max(kill_step - kill_step % EVERY_N_STEPS, kill_step - kill_step % per_epoch)


def choose_kill_steps(per_epoch: int) -> dict[str, int]:
    """A "random" but reproducible step per case (seeded), among the steps that make the case."""
    rng = random.Random(20240607)
    total = per_epoch * EPOCHS
    mid_epoch = [
        k
        for k in range(1, total)
        # 3+ batches into an epoch and 3+ before its end, 1 to 4 steps after a step checkpoint of this epoch.
        if 3 <= k % per_epoch <= per_epoch - 3
        and 1 <= k % EVERY_N_STEPS <= 4
        and k - k % EVERY_N_STEPS > k - k % per_epoch
    ]
    # 1 or 2 batches into an epoch after the first: the newest checkpoint is the epoch end's (or a step one just after it).
    after_boundary = [k for k in range(per_epoch + 1, total) if k % per_epoch in (1, 2) and k % EVERY_N_STEPS != 0]
    return {"mid-epoch": rng.choice(mid_epoch), "after-epoch-boundary": rng.choice(after_boundary)}


def environment(kill_step: int | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != KILL_AT_STEP_ENV}
    if kill_step is not None:
        env[KILL_AT_STEP_ENV] = str(kill_step)
    return env


def start(args: list, cwd: Path, kill_step: int | None = None) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "expresso", *map(str, args)],
        cwd=cwd,
        env=environment(kill_step),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(process: subprocess.Popen) -> subprocess.CompletedProcess:
    stdout, stderr = process.communicate(timeout=300)
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def make_project(tmp_path_factory, name: str, experiment: str) -> Path:
    """A project folder with the example configs, the test fixtures and ``configs/experiments/<name>.yaml``."""
    project = tmp_path_factory.mktemp(f"{name}-project")
    shutil.copytree(EXAMPLE_CONFIGS, project / "configs")
    shutil.copytree(FIXTURES, project / "fixtures", ignore=shutil.ignore_patterns("__pycache__"))
    (project / "configs" / "experiments" / f"{name}.yaml").write_text(experiment)
    return project


def only_run_dir(runs_root: Path, experiment: str = "resume") -> Path:
    """The one run folder of ``experiment`` under ``runs_root`` (folders moved aside by ``--force`` do not count)."""
    found = sorted(p for p in runs_root.glob(f"{experiment}/*") if ".replaced-" not in p.name)
    assert len(found) == 1, found
    return found[0]


def read_record(run_dir: Path) -> dict:
    return json.loads((run_dir / "run.json").read_text())


def load(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)


def differences(a, b, where: str = "") -> list[str]:
    """Key paths at which two checkpoint payloads differ (tensors compared with torch.equal, dtype included)."""
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        same = isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b)
        return [] if same else [where]
    if isinstance(a, dict) and isinstance(b, dict):
        if a.keys() != b.keys():
            return [f"{where} keys {sorted(map(str, a.keys() ^ b.keys()))}"]
        return [d for key in a for d in differences(a[key], b[key], f"{where}/{key}")]
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        if len(a) != len(b):
            return [f"{where} length {len(a)} != {len(b)}"]
        return [d for i, (x, y) in enumerate(zip(a, b)) for d in differences(x, y, f"{where}[{i}]")]
    return [] if a == b else [f"{where}: {a!r} != {b!r}"]


def end_differences(a_dir: Path, b_dir: Path) -> list[str]:
    """Where two finished runs differ: every tensor and value of both checkpoints (weights, optimizers, scheduler,
    callbacks' states, RNG, loop, metrics), the history's rows (step rows included) and run.json's summary."""
    found = []
    for name in ("last.ckpt", "best.ckpt"):
        a, b = load(a_dir / "checkpoints" / name), load(b_dir / "checkpoints" / name)
        found += [f"{name}{where}" for where in differences(a, b)]
    if (a_dir / "metrics.csv").read_text() != (b_dir / "metrics.csv").read_text():
        found.append("metrics.csv")
    found += [
        f"run.json summary{where}"
        for where in differences(read_record(a_dir)["summary"], read_record(b_dir)["summary"])
    ]
    return found


def killed_and_resumed_again(killed: dict, case: str) -> tuple[Path, Path]:
    """The case once more (second_try.py): a fresh uninterrupted run, and a fresh run killed at the case's step and resumed."""
    project, train = killed["project"], ["train", "configs/experiments/resume.yaml", "--runs-root"]
    reference = start([*train, project / f"runs-A-again-{case}"], project)
    killed_again = finish(
        start([*train, project / f"runs-{case}-again"], project, kill_step=killed["kill_steps"][case])
    )
    assert killed_again.returncode == -signal.SIGKILL, killed_again.stderr
    run_dir = only_run_dir(project / f"runs-{case}-again")
    resumed = finish(start(["resume", run_dir], project))
    assert resumed.returncode == 0, resumed.stderr
    assert finish(reference).returncode == 0
    return only_run_dir(project / f"runs-A-again-{case}"), run_dir


@pytest.fixture(scope="module")
def killed(tmp_path_factory):
    """A trained through; each B killed at its step, with what it left behind read right after the kill."""
    project = make_project(tmp_path_factory, "resume", EXPERIMENT)
    per_epoch = steps_per_epoch()
    kill_steps = choose_kill_steps(per_epoch)
    train = ["train", "configs/experiments/resume.yaml", "--runs-root"]
    processes = {"A": start([*train, project / "runs-A"], project)}
    for case in CASES:
        processes[case] = start([*train, project / f"runs-{case}"], project, kill_step=kill_steps[case])
    results = {name: finish(process) for name, process in processes.items()}
    assert results["A"].returncode == 0, results["A"].stderr
    killed_runs = {}
    for case in CASES:
        run_dir = only_run_dir(project / f"runs-{case}")
        killed_runs[case] = {
            "result": results[case],
            "run_dir": run_dir,
            "record": read_record(run_dir),
            "loop": load(run_dir / "checkpoints" / "last.ckpt")["loop"],
        }
    return {
        "project": project,
        "per_epoch": per_epoch,
        "kill_steps": kill_steps,
        "A": only_run_dir(project / "runs-A"),
        "B": killed_runs,
    }


@pytest.fixture(scope="module")
def resumed(killed):
    """``expresso resume B`` for every case, killer disarmed (its variable unset); both run together."""
    processes = {case: start(["resume", killed["B"][case]["run_dir"]], killed["project"]) for case in CASES}
    return {case: finish(process) for case, process in processes.items()}


@pytest.mark.parametrize("case", CASES)
def test_sigkill_leaves_the_run_marked_running_with_the_last_checkpoint_before_the_kill(killed, case):
    run = killed["B"][case]
    kill_step, per_epoch = killed["kill_steps"][case], killed["per_epoch"]
    assert run["result"].returncode == -signal.SIGKILL, run["result"].stderr
    assert run["record"]["status"] == "running"
    assert run["record"]["ended_at"] is None
    assert "final" not in run["record"]["summary"]  # no test metrics: nothing claims the run finished
    assert run["loop"]["step"] == last_checkpoint_step(kill_step, per_epoch), f"killed at step {kill_step}"


@pytest.mark.parametrize("case", CASES)
def test_resume_after_sigkill_ends_bit_for_bit_like_the_uninterrupted_run(killed, resumed, case):
    a_dir, b_dir = killed["A"], killed["B"][case]["run_dir"]
    kill_step = killed["kill_steps"][case]
    assert resumed[case].returncode == 0, resumed[case].stderr

    assert load(b_dir / "checkpoints" / "last.ckpt")["loop"] == {
        "epoch": EPOCHS,
        "batch_index": 0,
        "step": EPOCHS * killed["per_epoch"],
        "stage": 0,
        "stage_epoch": EPOCHS,
        "stage_stopped": False,
        "stops": {},
        "stop_fit": False,
    }
    assert "train/batch_loss" in (a_dir / "metrics.csv").read_text().splitlines()[0]  # step rows must match too

    def again() -> list[str]:
        return end_differences(*killed_and_resumed_again(killed, case))

    assert differences_twice(lambda: end_differences(a_dir, b_dir), again) == [], f"killed at step {kill_step}"

    b_record = read_record(b_dir)
    assert b_record["status"] == "completed"
    assert b_record["ended_at"] is not None
    assert [(r["checkpoint"], r["overrides"]) for r in b_record["resumes"]] == [
        (str(b_dir / "checkpoints" / "last.ckpt"), [])
    ]
