"""``loggers:`` components through the CLI: a Logger receives every epoch's metrics, those any callback wrote too,
then the final metrics and how the run ended; a component that is not a Logger, or a logger class listed twice (its
checkpoint key would clash), is refused at --check."""

from __future__ import annotations

import json

from cli_runs import one_line_error, only_run_dir, read_history, together

LOGGED = [
    "train",
    "configs/experiments/tiny.yaml",
    "callbacks=[{class: fixtures/probes.py:DoubledAccuracy}]",
    "loggers=[csv, {class: fixtures/probes.py:JsonLinesLogger}]",
]
NOT_A_LOGGER = [
    "config",
    "--check",
    "configs/experiments/tiny.yaml",
    "loggers=[csv, {class: fixtures/probes.py:SaveStartState, path: x.pt}]",
]
TWICE = [
    "config",
    "--check",
    "configs/experiments/tiny.yaml",
    "loggers=[csv, {class: fixtures/probes.py:JsonLinesLogger}, {class: fixtures/probes.py:JsonLinesLogger}]",
]


def test_a_logger_and_metrics_csv_receive_what_a_callback_wrote_and_a_non_logger_is_refused(project, tmp_path):
    results = together(
        {
            "logged": ([*LOGGED, "--runs-root", tmp_path], None),
            "refused": (NOT_A_LOGGER, None),
            "twice": (TWICE, None),
        },
        cwd=project,
    )
    assert results["logged"].returncode == 0, results["logged"].stderr
    run_dir = only_run_dir(tmp_path, "tiny")

    epochs = [row for row in read_history(run_dir) if row["val/acc"]]
    assert [row["epoch"] for row in epochs] == ["1", "2"]
    for row in epochs:  # the user callback's value is in the row of the epoch it was written at
        assert float(row["val/double_acc"]) == 2 * float(row["val/acc"])

    tracked = [json.loads(line) for line in (run_dir / "tracked.jsonl").read_text().splitlines()]
    assert tracked[0] == {"hyperparams": {"name": "tiny", "lr": 0.003}}
    # after the fit: the final metrics run.json holds (best.ckpt's: epoch 1), at the fit's last step, then the end
    final = json.loads((run_dir / "run.json").read_text())["summary"]["final"]
    assert (final["epoch"], sorted(final["metrics"])) == (1, ["test/acc", "test/loss", "val/acc", "val/loss"])
    assert tracked[-2:] == [
        {"summary": {f"final/{key}": value for key, value in final["metrics"].items()}, "step": 20, "epoch": 2},
        {"status": "completed"},
    ]
    assert [(entry["epoch"], entry["step"]) for entry in tracked[1:-2]] == [(1, 10), (2, 20)]
    for entry, row in zip(tracked[1:-2], epochs):  # the same values the history holds
        assert entry["metrics"] == {key: float(row[key]) for key in entry["metrics"]}
        assert entry["metrics"]["val/double_acc"] == 2 * entry["metrics"]["val/acc"]

    line = one_line_error(results["refused"])
    assert line == (
        "expresso: error: command line: loggers.1.class: fixtures/probes.py:SaveStartState is not an expresso.loggers.Logger: "
        "a logger receives the hyperparameters, every epoch's metrics and how the run ended (subclass expresso.loggers.Logger), "
        "or write one of csv, tensorboard, mlflow, clearml, sacred, comet, wandb"
    )
    assert one_line_error(results["twice"]) == (
        "expresso: error: command line: loggers.2: a second JsonLinesLogger, as loggers.1: a run's checkpoints keep "
        "each logger's state under its class name, so a class is listed once (for a second destination of one kind, "
        "list a subclass of JsonLinesLogger)"
    )
