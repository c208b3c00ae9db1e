"""How a run ends when its numbers diverge or a signal comes at an odd moment (issue 14 items 5, 11 and 12).

Five trainings start at once (their processes' start-up overlaps):

- ``poisoned``: NaN in the data from epoch 2 on, no NaNGuard: the default
  check ends the run at epoch 2's end, before anything of it is saved;
- ``guarded``: the same with ``NaNGuard(action='stop')``: it stops at the
  first NaN step;
- ``huge-lr``: ``optimizer.lr=1e300``, which torch cannot convert to the
  float32 weights inside AdamW's step;
- ``late-sigterm``: SIGTERM during the evaluation after the fit;
- ``ctrl-c``: SIGINT (Ctrl-C) during the fit.

Each failure is one line on the console (no traceback), ``run.json`` says
``failed`` with the error, and the checkpoints hold finite weights only.
"""

from __future__ import annotations

import textwrap

import pytest
import torch
from cli_runs import load, only_run_dir, read_history, read_record, together

pytestmark = pytest.mark.slow  # make test-slow: five trainings; the unit tests of engine/finite.py run in CI

POISONED = """\
    extends: tiny.yaml
    name: poisoned
    trainer: {max_epochs: 3, limit_batches: 2}
    callbacks: [{class: fixtures/mishaps.py:NaNInputsFrom, step: 3}]
    """
GUARDED = """\
    extends: tiny.yaml
    name: guarded
    trainer: {max_epochs: 3, limit_batches: 2}
    callbacks: [{class: fixtures/mishaps.py:NaNInputsFrom, step: 3}, {class: expresso.callbacks.NaNGuard}]
    """
LATE_SIGTERM = """\
    extends: tiny.yaml
    name: late-sigterm
    callbacks: [{class: fixtures/mishaps.py:SendSignal, name: SIGTERM, at: final_evaluation}]
    """
CTRL_C = """\
    extends: tiny.yaml
    name: ctrl-c
    callbacks: [{class: fixtures/mishaps.py:SendSignal, name: SIGINT, at: 2}]
    """


@pytest.fixture(scope="module")
def ended(project, tmp_path_factory) -> dict:
    experiments = project / "configs" / "experiments"
    for name, text in {
        "poisoned": POISONED,
        "guarded": GUARDED,
        "late-sigterm": LATE_SIGTERM,
        "ctrl-c": CTRL_C,
    }.items():
        (experiments / f"{name}.yaml").write_text(textwrap.dedent(text))
    root = tmp_path_factory.mktemp("endings")
    commands = {
        "poisoned": ["train", "configs/experiments/poisoned.yaml"],
        "guarded": ["train", "configs/experiments/guarded.yaml"],
        "huge-lr": ["train", "configs/experiments/tiny.yaml", "optimizer.lr=1e300", "--dev-run", "2"],
        "late-sigterm": ["train", "configs/experiments/late-sigterm.yaml", "--dev-run", "2"],
        "ctrl-c": ["train", "configs/experiments/ctrl-c.yaml", "--dev-run", "2"],
    }
    results = together({name: ([*args, "--runs-root", root / name], None) for name, args in commands.items()}, project)
    experiment = {"huge-lr": "tiny"}
    return {name: (result, only_run_dir(root / name, experiment.get(name, name))) for name, result in results.items()}


def failure_line(ended, name: str) -> str:
    """The run failed with exit status 1 and one line, the last of its stderr, and no traceback; that line."""
    result, run_dir = ended[name]
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    *_, last = result.stderr.splitlines()
    assert last.startswith("expresso: the run failed: "), result.stderr
    record = read_record(run_dir)
    assert record["status"] == "failed"
    assert record["error"] == {"type": "NonFiniteLossError", "message": last.removeprefix("expresso: the run failed: ")}
    assert "Traceback" in (run_dir / "log.txt").read_text()  # for whoever debugs it, in the file only
    return last


def finite_epoch_one(run_dir) -> None:
    """last.ckpt and best.ckpt hold epoch 1's end (step 2), finite; metrics.csv has epoch 1's row alone."""
    for name in ("last", "best"):
        checkpoint = load(run_dir / "checkpoints" / f"{name}.ckpt")
        assert checkpoint["loop"]["step"] == 2, name
        assert all(torch.isfinite(t).all() for t in checkpoint["models"]["model"].values()), name
    assert [row["epoch"] for row in read_history(run_dir)] == ["1"]


def test_a_nan_in_the_data_fails_the_run_at_the_epochs_end_keeping_the_last_finite_checkpoint(ended):
    _, run_dir = ended["poisoned"]
    assert failure_line(ended, "poisoned") == (
        "expresso: the run failed: non-finite training loss in epoch 2: train/loss=nan after step 4;"
        f" the epoch was not saved; the last checkpoint, {run_dir / 'checkpoints' / 'last.ckpt'},"
        " holds the finite weights of the end of epoch 1 (step 2)"
    )
    finite_epoch_one(run_dir)


def test_nan_guards_stop_fails_the_run_in_one_line_recorded(ended):
    _, run_dir = ended["guarded"]
    assert failure_line(ended, "guarded") == (
        "expresso: the run failed: non-finite loss 'loss' at step 3 (epoch 2, batch 1);"
        " NaNGuard(action='stop') ended the fit;"
        f" the last checkpoint, {run_dir / 'checkpoints' / 'last.ckpt'}, holds the finite weights of the end of epoch 1 (step 2)"
    )
    finite_epoch_one(run_dir)


def test_a_learning_rate_the_weights_dtype_cannot_hold_fails_the_run_in_one_line(ended):
    _, run_dir = ended["huge-lr"]
    assert failure_line(ended, "huge-lr") == (
        "expresso: the run failed: the AdamW update at step 1 (epoch 1, batch 1) overflowed the weights' dtype"
        " (value cannot be converted to type float without overflow; lr=1e+300: too large?); no checkpoint was written"
    )
    assert not (run_dir / "checkpoints" / "last.ckpt").exists()


def test_a_sigterm_during_the_final_evaluation_lets_the_completed_run_exit_0_and_says_so(ended):
    result, run_dir = ended["late-sigterm"]
    assert result.returncode == 0, result.stderr
    assert read_record(run_dir)["status"] == "completed" and "interrupted_by" not in read_record(run_dir)
    line = "SIGTERM arrived after the training's last checkpoint: the run is complete (recorded completed), nothing to resume"
    assert result.stderr.splitlines()[-1] == line
    assert (run_dir / "log.txt").read_text().splitlines()[-1] == line
    assert result.stdout.startswith(f"run folder: {run_dir}\nfinal metrics,")  # the final table is printed whole


def test_ctrl_c_is_recorded_as_interrupted_by_sigint(ended):
    result, run_dir = ended["ctrl-c"]
    assert result.returncode == 130, result.stderr
    record = read_record(run_dir)
    assert (record["status"], record["interrupted_by"]) == ("interrupted", "SIGINT")
