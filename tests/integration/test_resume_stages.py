"""A staged, interleaved fit killed with SIGKILL mid-stage resumes bit for bit (same machinery as test_resume.py).

The autoencoder example with short stages: pretrain (reconstruct), probe
(classify on the frozen encoder), finetune (classify and reconstruct
interleaved 1:2). One run goes through; two are killed, one in the middle of
the probe stage, one in the middle of an interleaved finetune epoch, right
after a step checkpoint; ``expresso resume`` finishes each, and their final
checkpoints, histories and records equal the uninterrupted run's.
"""

from __future__ import annotations

import signal
import textwrap

import pytest
import torch
from test_resume import differences, finish, load, make_project, only_run_dir, read_record, start

pytestmark = (
    pytest.mark.slow
)  # make test-slow: a staged fit killed and resumed; test_resume.py's bit-for-bit resume runs in CI

EVERY_N_STEPS = 7
# 1257 training images in batches of 128: 10 batches per epoch and pipeline.
# pretrain: steps 1-20; probe: 21-40; finetune: 41-80 (20 interleaved batches per epoch).
KILL_STEPS = {
    "probe": 37,
    "finetune": 66,
}  # newest checkpoints: step 35 (probe, 5 batches into its 2nd epoch), 63 (3 into finetune's 2nd)
EXPERIMENT = textwrap.dedent(
    f"""\
    extends: digits_ae_classifier.yaml
    name: staged
    models:
      classifier: {{dropout: 0.2}}
    stages:
      - {{name: pretrain, train: [reconstruct], epochs: 2}}
      - {{name: probe, train: [classify], frozen: [encoder], epochs: 2}}
      - {{name: finetune, train: [classify, reconstruct], interleave: {{classify: 1, reconstruct: 2}}, epochs: 2}}
    trainer: {{batch_size: 128, log_every_n_steps: 4}}
    dataloader: {{shuffle: true}}
    callbacks:
      - {{class: expresso.callbacks.Checkpoint, monitor: val/classify/acc, mode: max, every_n_steps: {EVERY_N_STEPS}}}
      - {{class: fixtures/killer.py:KillAt}}
    """
)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    project = make_project(tmp_path_factory, "staged", EXPERIMENT)
    train = ["train", "configs/experiments/staged.yaml", "--runs-root"]
    processes = {"A": start([*train, project / "runs-A"], project)}
    for case, step in KILL_STEPS.items():
        processes[case] = start([*train, project / f"runs-{case}"], project, kill_step=step)
    killed = {name: finish(process) for name, process in processes.items()}
    assert killed["A"].returncode == 0, killed["A"].stderr
    dirs = {name: only_run_dir(project / f"runs-{name}", "staged") for name in processes}
    loops = {case: load(dirs[case] / "checkpoints" / "last.ckpt")["loop"] for case in KILL_STEPS}
    resumed = {case: start(["resume", dirs[case]], project) for case in KILL_STEPS}
    resumed = {case: finish(process) for case, process in resumed.items()}
    return {"killed": killed, "dirs": dirs, "loops": loops, "resumed": resumed}


@pytest.mark.parametrize("case", list(KILL_STEPS))
def test_a_staged_interleaved_fit_killed_mid_stage_resumes_bit_for_bit(runs, case):
    assert runs["killed"][case].returncode == -signal.SIGKILL, runs["killed"][case].stderr
    expected_loop = {
        "probe": {
            "epoch": 3,
            "batch_index": 5,
            "step": 35,
            "stage": 1,
            "stage_epoch": 1,
            "stage_stopped": False,
            "stops": {},
            "stop_fit": False,
        },
        "finetune": {
            "epoch": 5,
            "batch_index": 3,
            "step": 63,
            "stage": 2,
            "stage_epoch": 1,
            "stage_stopped": False,
            "stops": {},
            "stop_fit": False,
        },
    }[case]
    assert runs["loops"][case] == expected_loop  # the kill came mid-stage, mid-epoch
    assert runs["resumed"][case].returncode == 0, runs["resumed"][case].stderr

    a_dir, b_dir = runs["dirs"]["A"], runs["dirs"][case]
    a_last, b_last = load(a_dir / "checkpoints" / "last.ckpt"), load(b_dir / "checkpoints" / "last.ckpt")
    print(f"{case}: every difference: {differences(a_last, b_last)}")
    assert b_last["loop"] == {
        "epoch": 6,
        "batch_index": 0,
        "step": 80,
        "stage": 2,
        "stage_epoch": 2,
        "stage_stopped": False,
        "stops": {},
        "stop_fit": False,
    }
    for name in ("encoder", "decoder", "classifier"):
        a, b = a_last["models"][name], b_last["models"][name]
        assert [k for k in a if not torch.equal(a[k], b[k])] == [], name
    assert differences(a_last, b_last) == []
    assert (b_dir / "metrics.csv").read_text() == (a_dir / "metrics.csv").read_text()
    assert read_record(b_dir)["summary"] == read_record(a_dir)["summary"]


def test_the_history_of_a_staged_fit_names_each_rows_stage(runs):
    lines = (runs["dirs"]["A"] / "metrics.csv").read_text().splitlines()
    header = lines[0].split(",")
    assert header[:3] == ["epoch", "step", "stage"]
    epoch_rows = [line.split(",") for line in lines[1:] if line.split(",")[header.index("train/batch_loss")] == ""]
    assert [row[2] for row in epoch_rows] == ["pretrain"] * 2 + ["probe"] * 2 + ["finetune"] * 2
