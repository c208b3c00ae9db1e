"""A resume with new settings, as a new user runs it: early stopping ends a run; resumed with a larger patience,
more epochs and a new learning rate, it trains on, and the training, config.yaml, run.json and metrics.csv
all say the same thing about what happened.

What a resume may change, and how each change is applied: src/expresso/commands/resume_changes.py.
"""

from __future__ import annotations

import math
import shutil
import textwrap

import pytest
from cli_runs import (
    expresso,
    load,
    one_line_error,
    only_run_dir,
    printed_metrics,
    read_config,
    read_history,
    read_record,
    together,
)

EXPERIMENT = """\
    extends: digits_mlp.yaml
    name: patient
    trainer: {max_epochs: 6, batch_size: 128}
    callbacks:
      - {class: expresso.callbacks.EarlyStopping, monitor: val/acc, mode: max, patience: 1, min_delta: 0.03}
    """


def cosine(base: float, t_max: int, epoch: int) -> float:
    """CosineAnnealingLR's rate for the epoch counted from 1 (closed form, stepped once per epoch)."""
    return base * (1 + math.cos(math.pi * (epoch - 1) / t_max)) / 2


def epoch_rows(run_dir) -> list[dict]:
    return [row for row in read_history(run_dir) if row.get("val/acc")]


@pytest.fixture(scope="module")
def stopped(project, tmp_path_factory):
    """A run early stopping ended before trainer.max_epochs, and the bytes of its records."""
    (project / "configs" / "experiments" / "patient.yaml").write_text(textwrap.dedent(EXPERIMENT))
    root = tmp_path_factory.mktemp("patient")
    result = expresso("train", "configs/experiments/patient.yaml", "--runs-root", root, cwd=project)
    assert result.returncode == 0, result.stderr
    run_dir = only_run_dir(root, "patient")
    return run_dir


def files_of(run_dir) -> dict[str, bytes]:
    return {name: (run_dir / name).read_bytes() for name in ("config.yaml", "run.json", "metrics.csv")}


def test_a_resume_that_would_train_nothing_or_change_what_cannot_change_is_refused_and_writes_nothing(
    project, stopped, tmp_path
):
    before = files_of(stopped)
    rows = epoch_rows(stopped)
    assert [int(row["epoch"]) for row in rows] == list(range(1, len(rows) + 1)) and len(rows) < 6  # stopped early
    copy = tmp_path / "copy"  # the two resumes at once, each on its own folder: one folder has one writer at a time
    shutil.copytree(stopped, copy)

    results = together(
        {
            "as is": (["resume", stopped], None),
            "refused": (["resume", copy, "model.hidden=[32]", "trainer.seed=1", "callbacks.0.patience=4"], None),
        },
        cwd=project,
    )
    line = one_line_error(results["as is"])
    assert line.startswith(
        f"expresso: error: {stopped}: nothing to train: EarlyStopping stopped it: val/acc did not improve by more than 0.03 in 1 check(s)"
    )
    assert line.endswith(
        "raise the patience of what stopped it or remove it ('~callbacks.N'), with more epochs if needed (trainer.max_epochs=N)"
    )

    refused = results["refused"]
    assert refused.returncode == 2, refused.stderr
    assert refused.stderr.splitlines() == [
        "expresso: error: 2 problems in the config:",
        "  command line: trainer.seed: a resume cannot change it: the random state continues from the checkpoint",
        "  command line: model.hidden: a resume cannot change it: the checkpoint holds the weights of the model as it was "
        "(start a new run with init_from: RUN to reuse them)",
    ]
    assert files_of(stopped) == before and files_of(copy) == before


def test_resumed_with_a_larger_patience_more_epochs_and_a_new_rate_the_run_trains_on_and_every_record_agrees(
    project, stopped
):
    first = epoch_rows(stopped)
    stopped_at = len(first)
    result = expresso(
        "resume", stopped, "callbacks.0.patience=4", "trainer.max_epochs=9", "optimizer.lr=1e-3", cwd=project
    )
    assert result.returncode == 0, result.stderr
    rows = epoch_rows(stopped)
    last = int(rows[-1]["epoch"])

    # The training: it went on past the stop, each epoch at the rate the new settings give it.
    assert [int(row["epoch"]) for row in rows] == list(range(1, last + 1)) and last > stopped_at
    assert [
        {key: row[key] for key in first[0]} for row in rows[:stopped_at]
    ] == first  # the past is not rewritten (a column may join)
    for row in rows[:stopped_at]:
        assert float(row["lr"]) == pytest.approx(cosine(3e-3, 6, int(row["epoch"])), rel=1e-12)
    for row in rows[stopped_at:]:  # T_max follows trainer.max_epochs, as the example's config says
        assert float(row["lr"]) == pytest.approx(cosine(1e-3, 9, int(row["epoch"])), rel=1e-12)
    saved = load(stopped / "checkpoints" / "last.ckpt")
    group = saved["optimizers"]["optimizer"]["param_groups"][0]
    assert (group["initial_lr"], group["weight_decay"]) == (1e-3, 0.01)
    stopper = saved["callbacks"]["EarlyStopping"]
    stopped_again = last < 9
    assert (stopper["wait"] >= 4) == stopped_again  # the new patience, counted on from the checkpoint's wait

    # config.yaml: the settings the run continues with.
    config = read_config(stopped)
    assert (config["optimizer"]["lr"], config["trainer"]["max_epochs"], config["scheduler"]["T_max"]) == (1e-3, 9, 9)
    assert config["callbacks"][0]["patience"] == 4

    # run.json: each segment's changes, and a summary of the whole run.
    record = read_record(stopped)
    (resumed,) = record["resumes"]
    assert (resumed["from"], resumed["after"]) == (
        {"epoch": stopped_at, "step": 10 * stopped_at},
        {"status": "completed"},
    )
    assert resumed["changes"] == {
        "optimizer.lr": {"from": 3e-3, "to": 1e-3},
        "scheduler.T_max": {"from": 6, "to": 9},
        "trainer.max_epochs": {"from": 6, "to": 9},
        "callbacks.0.patience": {"from": 1, "to": 4},
    }
    accuracies = [float(row["val/acc"]) for row in rows]
    best_epoch = accuracies.index(max(accuracies)) + 1
    summary = record["summary"]
    assert (record["status"], summary["epochs"], summary["best_epoch"]) == ("completed", last, best_epoch)
    assert summary["best"] == pytest.approx(max(accuracies), rel=1e-7)
    final = summary["final"]
    assert (final["weights"], final["epoch"]) == ("checkpoints/best.ckpt", best_epoch)
    assert final["metrics"]["val/acc"] == pytest.approx(max(accuracies), abs=1e-6)  # the same weights, measured again

    # log.txt: why it trained on.
    log = (stopped / "log.txt").read_text()
    assert "resume changes callbacks.0.patience: 1 -> 4" in log
    assert "EarlyStopping had stopped this run (val/acc did not improve by more than 0.03 in 1 check(s)" in log
    assert (
        f"final metrics, with the weights of best.ckpt (epoch {best_epoch}, step {10 * best_epoch}):" in result.stdout
    )
    shown = printed_metrics(result.stdout)  # one set of weights: no training figure of another epoch beside them
    assert sorted(shown) == ["test/acc", "test/loss", "val/acc", "val/loss"]
    assert shown["val/acc"] == f"{final['metrics']['val/acc']:.6g}"


@pytest.mark.slow  # CI's time is short
def test_a_damaged_best_ckpt_is_set_aside_when_the_resume_starts_and_the_final_metrics_measure_the_last_weights(
    base, project, tmp_path
):
    """It used to be found only by the final metrics, after every remaining epoch had trained: exit 2, run failed."""
    run_dir = tmp_path / "run"
    shutil.copytree(base, run_dir)
    best = run_dir / "checkpoints" / "best.ckpt"
    data = bytearray(best.read_bytes())
    data[len(data) // 2] ^= 0x01
    best.unlink()  # a hard link of an epoch's last.ckpt: damage this name only
    best.write_bytes(bytes(data))

    result = expresso("resume", run_dir, "trainer.max_epochs=3", cwd=project)
    assert result.returncode == 0, result.stderr
    warning = next(line for line in result.stderr.splitlines() if "best.ckpt: damaged" in line)
    best_value = read_record(base)["summary"]["best"]
    assert warning.endswith(
        f"moved it to best.ckpt.damaged: unless an epoch beats val/acc={best_value:.6g} (epoch 1), "
        "the final metrics measure the last weights"
    )
    assert (run_dir / "checkpoints" / "best.ckpt.damaged").read_bytes() == bytes(data)
    assert not best.exists()  # mode min: epochs 2 and 3 do not beat epoch 1, so nothing wrote it again
    final = read_record(run_dir)["summary"]["final"]
    assert (final["weights"], final["epoch"]) == ("last", 3)
    assert "final metrics, with the last weights (epoch 3, step 30):" in result.stdout
