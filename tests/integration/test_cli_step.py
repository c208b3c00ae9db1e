"""The training step's settings through ``expresso``: precision, accumulation, the clipping shorthand, their refusals.

One experiment has all of them at once (16-mixed's GradScaler, windows of
3 batches, clipping after unscaling, step checkpoints): A trains through,
B is killed with SIGKILL at the end of an optimizer step by the
fixtures/killer.py callback and resumed; B must end bit for bit as A, the
scaler's state included. The refusals start beside them.

Digits' training images in batches of 128 are 10 batches an epoch:
windows close after batches 3, 6, 9 and the epoch's last (10), 4 optimizer
steps an epoch.
"""

from __future__ import annotations

import shutil
import signal
import textwrap

import pytest
from cli_runs import EXAMPLES, FIXTURES, finish, load, one_line_error, only_run_dir, read_history, read_record, start

EXPERIMENT = """\
    extends: ../defaults/classification.yaml
    name: step
    model:
      class: fixtures/probes.py:seeded_model
      seed: 0
      build: {class: expresso.models.MLP, _partial_: true, in_features: 64, hidden: [32], num_classes: 10}
    trainer:
      max_epochs: 2
      batch_size: 128
      log_every_n_steps: 2
      precision: 16-mixed
      accumulate_grad_batches: 3
      gradient_clip_val: 0.5
    callbacks:
      - {class: expresso.callbacks.Checkpoint, monitor: val/acc, mode: max, every_n_steps: 2}
      - {class: fixtures/killer.py:KillAt}
    """
STEPS_PER_EPOCH = 4
KILL_AT = 7  # epoch 2, after its batch 9; the newest checkpoint is step 6's (after its batch 6)


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    project = tmp_path_factory.mktemp("step-project")
    shutil.copytree(EXAMPLES / "configs", project / "configs")
    shutil.copytree(FIXTURES, project / "fixtures", ignore=shutil.ignore_patterns("__pycache__"))
    (project / "configs" / "experiments" / "step.yaml").write_text(textwrap.dedent(EXPERIMENT))
    return project


@pytest.fixture(scope="module")
def runs(project):
    """The CNN in bf16-mixed and channels_last, and two refusals at --check: started together."""
    experiments = EXAMPLES / "configs" / "experiments"
    check = ["config", "--check"]
    processes = {
        "cnn": start(
            [
                "train",
                experiments / "digits_cnn.yaml",
                "trainer.precision=bf16-mixed",
                "trainer.channels_last=true",
                "--dev-run",
                "1",
                "--runs-root",
                project / "runs-cnn",
            ],
            project,
        ),
        "gan": start([*check, experiments / "digits_gan.yaml", "trainer.accumulate_grad_batches=2"], project),
        "clip": start([*check, experiments / "digits_semi_supervised.yaml", "trainer.gradient_clip_val=2"], project),
    }
    return {"results": {name: finish(process) for name, process in processes.items()}, "cnn": project / "runs-cnn"}


@pytest.fixture(scope="module")
def killed(project):
    """A trained through, B killed at KILL_AT and resumed."""
    train = ["train", "configs/experiments/step.yaml", "--runs-root"]
    processes = {
        "A": start([*train, project / "runs-A"], project),
        "B": start([*train, project / "runs-B"], project, {"EXPRESSO_TEST_KILL_AT_STEP": str(KILL_AT)}),
    }
    results = {name: finish(process) for name, process in processes.items()}
    b_dir = only_run_dir(project / "runs-B", "step")
    loop = load(b_dir / "checkpoints" / "last.ckpt")["loop"]
    results["resume"] = finish(start(["resume", b_dir], project))
    return {"results": results, "A": only_run_dir(project / "runs-A", "step"), "B": b_dir, "killed": loop}


# The in-process unit tests (tests/unit/engine/test_stepping.py) resume a 16-mixed accumulating run from a step
# checkpoint bit for bit in CI; these three processes (~12 s) run in `make test-slow`.
@pytest.mark.slow
def test_a_16_mixed_accumulating_clipped_run_killed_mid_epoch_resumes_bit_for_bit(killed):
    runs = killed
    results = runs["results"]
    assert results["A"].returncode == 0, results["A"].stderr
    assert results["B"].returncode == -signal.SIGKILL, results["B"].stderr
    assert (runs["killed"]["step"], runs["killed"]["epoch"], runs["killed"]["batch_index"]) == (6, 1, 6)
    assert results["resume"].returncode == 0, results["resume"].stderr
    a, b = (load(run / "checkpoints" / "last.ckpt") for run in (runs["A"], runs["B"]))
    assert a["loop"] == b["loop"] and a["loop"]["step"] == 2 * STEPS_PER_EPOCH
    assert a["grad_scaler"] == b["grad_scaler"] and a["grad_scaler"]["scale"] > 0
    for part in ("models", "optimizers"):
        assert _equal(a[part], b[part]), part
    assert read_record(runs["A"])["precision"] == "16-mixed"
    # history step rows every 2 optimizer steps, epoch rows at steps 4 and 8
    assert [int(row["step"]) for row in read_history(runs["A"])] == [2, 4, 4, 6, 8, 8]


def test_the_cnn_trains_in_bf16_mixed_and_channels_last(runs):
    result = runs["results"]["cnn"]
    assert result.returncode == 0, result.stderr
    record = read_record(only_run_dir(runs["cnn"], "digits-cnn"))
    assert (record["status"], record["precision"]) == ("completed", "bf16-mixed")


def test_accumulation_over_several_updates_and_clipping_in_both_forms_are_refused_at_check(runs):
    assert one_line_error(runs["results"]["gan"]).endswith(
        "trainer.accumulate_grad_batches: received 2, but pipeline(s) ['gan'] make several updates per batch, "
        "each stepping its optimizers before the next: accumulation needs one update per batch (use 1)"
    )
    assert one_line_error(runs["results"]["clip"]).endswith(
        "trainer.gradient_clip_val: received 2, but optimizers ['all'] clip their own gradients "
        "(clip_grad_norm/clip_grad_value): give one of the two forms"
    )


def _equal(a, b) -> bool:
    import torch

    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b)
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return isinstance(b, (list, tuple)) and len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b))
    return a == b


@pytest.mark.slow  # torch.compile takes 10-25 s on a CPU for the MLP (inductor's C++ build)
def test_compile_trains_the_mlp_on_cpu_and_a_machine_that_cannot_compile_fails_in_one_line(tmp_path):
    mlp = EXAMPLES / "configs" / "experiments" / "digits_mlp.yaml"
    train = ["train", mlp, "trainer.compile=true", "trainer.device=cpu", "--dev-run", "2", "--runs-root"]
    processes = {
        "compiled": start([*train, tmp_path / "compiled"], tmp_path),
        "no compiler": start([*train, tmp_path / "broken"], tmp_path, {"CXX": "/nonexistent/g++"}),
    }
    results = {name: finish(process) for name, process in processes.items()}
    assert results["compiled"].returncode == 0, results["compiled"].stderr
    assert read_record(only_run_dir(tmp_path / "compiled", "digits-mlp"))["status"] == "completed"
    broken = results["no compiler"]
    assert broken.returncode == 1, broken.stderr
    assert broken.stderr.strip().splitlines()[-1] == (
        "expresso: the run failed: trainer.compile: torch.compile failed on model 'model' (InvalidCxxCompiler: "
        "No working C++ compiler found in torch._inductor.config.cpp.cxx: (None, '/nonexistent/g++')); "
        "set trainer.compile: false to train without compiling"
    )
    assert read_record(only_run_dir(tmp_path / "broken", "digits-mlp"))["status"] == "failed"
