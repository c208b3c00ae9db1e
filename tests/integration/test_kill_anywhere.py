"""A training killed at any instant, then restarted, ends with every file of its run folder equal to the uninterrupted run's.

The promise covers the whole run folder, not only ``last.ckpt``: ``best.ckpt``
and the top-k copies, the callbacks' state inside every checkpoint, the
manifest's names, ``metrics.csv`` row for row, ``config.yaml`` and
``run.json``'s status and summary. Run A trains undisturbed and counts every
step of the run folder's writers (``expresso.runs.fault_points``: bytes
written, fsynced, renamed, linked, folder fsynced, a row appended, a top-k
copy removed, a checkpoint half written). Each killed run gets
the same config and is SIGKILLed at one of those steps (every step around
the first two epochs' ends, where best.ckpt and the top-k copies are linked,
every kind of step at least once, the rest at random: 70 or more) or after a
random delay (10); then the command a requeued job runs (``train --run-id
ID --resume-if-exists``) finishes it, and every file is compared with A's.

Slow (``make test-slow``): about 80 trainings and as many restarts, two at a time.
"""

from __future__ import annotations

import json
import random
import subprocess
import textwrap
import time
from pathlib import Path

import pytest
import yaml
from cli_runs import finish, start
from test_resume import differences, load, make_project

pytestmark = pytest.mark.slow

FS_STEPS_ENV = "EXPRESSO_TEST_FS_STEPS"  # expresso.runs.fault_points.ENV
AT_STEPS, AFTER_DELAYS, SEED = 70, 10, 20261130
EXPERIMENT = textwrap.dedent(
    """\
    extends: ../defaults/classification.yaml
    name: anywhere
    model:
      class: fixtures/probes.py:seeded_model
      seed: 0
      build: {class: expresso.models.MLP, _partial_: true, in_features: 64, hidden: [64], dropout: 0.1, num_classes: 10}
    scheduler: {class: torch.optim.lr_scheduler.StepLR, step_size: 5, gamma: 0.9, interval: step}
    trainer: {max_epochs: 3, batch_size: 128, log_every_n_steps: 3}
    dataloader: {shuffle: true}
    callbacks:
      - {class: expresso.callbacks.EarlyStopping, monitor: val/loss, patience: 5}
      # mode min: best.ckpt stays epoch 1's and the top-2 epochs 1 and 2, so a link missed at those epochs' ends
      # is not healed by a later epoch (as it would be by one that improves) and shows in the end files.
      - {class: expresso.callbacks.Checkpoint, monitor: val/acc, mode: min, save_top_k: 2, every_n_steps: 4}
    """
)
CONFIG = "configs/experiments/anywhere.yaml"


def command(project: Path, run_id: str, fs_steps: str | None) -> subprocess.Popen:
    """``train --run-id ID --resume-if-exists``: the same command starts the run and restarts it, as a requeued job does."""
    args = ["train", CONFIG, "--runs-root", project / "runs", "--run-id", run_id, "--resume-if-exists"]
    return start(args, project, {FS_STEPS_ENV: fs_steps} if fs_steps is not None else None)


def run_folder(project: Path, run_id: str) -> Path:
    return project / "runs" / "anywhere" / run_id


def files_of(run_dir: Path) -> set[str]:
    """Every file of the run folder, hidden ones (a temporary left behind) included; log.txt and the lock excepted."""
    return {
        str(p.relative_to(run_dir))
        for p in run_dir.rglob("*")
        if p.is_file() and p.name not in ("log.txt", "writer.lock")
    }


def status(run_dir: Path) -> str | None:
    try:
        return json.loads((run_dir / "run.json").read_text()).get("status")
    except (OSError, ValueError):
        return None


def mismatches(a_dir: Path, b_dir: Path) -> list[str]:
    """What differs between two run folders in what a run promises; empty when they are equal."""
    found = []
    a_files, b_files = files_of(a_dir), files_of(b_dir)
    if a_files != b_files:
        found.append(f"files: only in A {sorted(a_files - b_files)}, only in B {sorted(b_files - a_files)}")
    for name in sorted(a_files & b_files):
        a, b = a_dir / name, b_dir / name
        if name.endswith(".ckpt"):
            found += [f"{name}{where}" for where in differences(load(a), load(b))]
        elif name == "run.json":
            a_record, b_record = json.loads(a.read_text()), json.loads(b.read_text())
            for key in ("status", "summary", "seed", "name"):
                if a_record.get(key) != b_record.get(key):
                    found.append(f"run.json {key}: {a_record.get(key)!r} != {b_record.get(key)!r}")
        elif name.startswith("checkpoints/manifest"):
            a_names, b_names = (set(json.loads(p.read_text())["files"]) for p in (a, b))
            if a_names != b_names:
                found.append(f"{name} names: {sorted(a_names)} != {sorted(b_names)}")
        elif name == "config.yaml":
            if yaml.safe_load(a.read_text()) != yaml.safe_load(b.read_text()):
                found.append("config.yaml")
        elif a.read_bytes() != b.read_bytes():
            found.append(name)
    return found


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """Run A, undisturbed, with every file-system step of its writers logged; its duration."""
    project = make_project(tmp_path_factory, "anywhere", EXPERIMENT)
    log = project / "steps-A.log"
    started = time.monotonic()
    result = finish(command(project, "A", f"0:{log}"))
    assert result.returncode == 0, result.stderr
    steps = [line.split(" ", 1)[1] for line in log.read_text().splitlines()]
    return {"project": project, "dir": run_folder(project, "A"), "steps": steps, "seconds": time.monotonic() - started}


def kill_instants(steps: list[str], seconds: float) -> list[tuple[str, str]]:
    """(case name, how it dies): every step around the first two epochs' ends (where best.ckpt and the top-k are
    linked), every kind of step once, random steps up to AT_STEPS, then random delays."""
    rng = random.Random(SEED)
    at: set[int] = set()
    for linked in ("best.ckpt: linked", "epoch=2-step=20.ckpt: linked"):
        index = steps.index(linked) + 1
        at.update(range(max(1, index - 14), min(len(steps), index + 8) + 1))
    first_of_kind: dict[str, int] = {}
    for index, label in enumerate(steps, 1):
        first_of_kind.setdefault(label.split(": ", 1)[-1], index)
    at.update(first_of_kind.values())
    while len(at) < min(AT_STEPS, len(steps)):
        at.add(rng.randint(1, len(steps)))
    cases = [(f"step{index}", f"at {index}") for index in sorted(at)]
    return cases + [(f"delay{i}", f"after {rng.uniform(1.0, seconds):.2f} s") for i in range(AFTER_DELAYS)]


def killed_at(project: Path, name: str) -> str:
    """The step the process died at, from its own log: the heartbeat's writes make the numbering vary a little."""
    log = project / f"steps-{name}.log"
    return log.read_text().splitlines()[-1] if log.is_file() else "a random instant"


def kill_and_restart(project: Path, reference_dir: Path, cases: list[tuple[str, str]]) -> dict[str, list[str]]:
    """Each case killed as it says, then restarted, two at a time: what differs from run A, by case name."""
    failures: dict[str, list[str]] = {}
    for batch in range(0, len(cases), 2):  # two at once: the machine has two cores
        running = {}
        for name, how in cases[batch : batch + 2]:
            if how.startswith("at "):
                index = int(how.split()[1].rstrip(":"))
                running[name] = (how, command(project, name, f"{index}:{project / f'steps-{name}.log'}"), None)
            else:
                running[name] = (how, command(project, name, None), time.monotonic() + float(how.split()[1]))
        restarting = {}
        for name, (how, process, deadline) in running.items():
            if deadline is not None:
                try:
                    process.wait(timeout=max(0.0, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    process.kill()
            killed = finish(process)
            assert killed.returncode in (0, -9), f"{name} ({how}): {killed.stderr}"
            if killed.returncode == 0 or status(run_folder(project, name)) == "completed":
                continue  # a delay longer than the run, a kill after its last word: nothing to restart
            restarting[name] = (f"{how}: {killed_at(project, name)}", command(project, name, None))
        for name, (how, process) in restarting.items():
            restarted = finish(process)
            if restarted.returncode != 0:
                failures[name] = [how, f"restart exit {restarted.returncode}: {restarted.stderr.strip()[-500:]}"]
                continue
            found = mismatches(reference_dir, run_folder(project, name))
            if found:
                failures[name] = [how, *found]
    return failures


def test_a_run_killed_at_any_instant_restarts_to_the_uninterrupted_runs_files(reference):
    """A case that differs is run again: a kill at a step is deterministic, so a resume bug differs again.

    Why a second try: about one process in a hundred computes slightly different floats from some step on,
    killed or not (docs/reliability.md, "Not guaranteed": seen twice here, the same value at step 9 both
    times); such a case passes on its second try and is printed, not failed.
    """
    project, steps = reference["project"], reference["steps"]
    cases = kill_instants(steps, reference["seconds"])
    assert len(cases) >= AT_STEPS + AFTER_DELAYS
    first = kill_and_restart(project, reference["dir"], cases)
    how = dict(cases)
    again = kill_and_restart(project, reference["dir"], [(f"{name}-again", how[name]) for name in first])
    once = {name: found for name, found in first.items() if f"{name}-again" not in again}
    print(f"differed once, not on a second try (the floats of docs/reliability.md): {json.dumps(once, indent=1)}")
    assert again == {}, json.dumps({"first": first, "again": again}, indent=1)
