"""RecordSummary: run.json's summary follows the history, and its heartbeat is written at most every HEARTBEAT_SECONDS."""

from __future__ import annotations

import csv

import pytest

from expresso.callbacks import History
from expresso.callbacks.record_summary import RecordSummary
from expresso.engine import Callback, Trainer
from expresso.runs.record import RunRecord, read_record


@pytest.fixture
def fit(make_trainer, tmp_path):
    """``fit(*callbacks, max_epochs=4)``: a tiny fit in the run folder tmp_path; returns the trainer."""

    def run(*callbacks, max_epochs: int = 4) -> Trainer:
        trainer = make_trainer(*callbacks, max_epochs=max_epochs, lr=0.5, run_dir=tmp_path)
        trainer.fit()
        return trainer

    return run


def history_rows(run_dir) -> list[dict[str, str]]:
    with (run_dir / "metrics.csv").open(newline="") as handle:
        return [row for row in csv.DictReader(handle) if row["val/loss"]]  # the epoch rows


class Feed(Callback):
    """Replaces the measured val/loss with a scripted value per epoch, right after validation."""

    def __init__(self, values):
        self.values = values

    def on_validation_end(self, state):
        state.metrics["val/loss"] = self.values[state.epoch]


@pytest.mark.parametrize(("mode", "pick", "expected"), [("min", min, (0.2, 2)), ("max", max, (0.6, 3))])
def test_the_summary_holds_the_best_value_and_epoch_of_the_history_and_the_last_epochs_metrics(
    fit, tmp_path, mode, pick, expected
):
    record = RunRecord(tmp_path, {})
    trainer = fit(Feed([0.5, 0.2, 0.6, 0.3]), History(log_every_n_steps=1000), RecordSummary(record, "val/loss", mode))
    rows = history_rows(tmp_path)
    best = pick(rows, key=lambda row: float(row["val/loss"]))
    summary = read_record(tmp_path / "run.json")["summary"]
    assert (summary["best"], summary["best_epoch"]) == (float(best["val/loss"]), int(best["epoch"])) == expected
    assert {k: summary[k] for k in ("epochs", "step", "monitor", "mode")} == {
        "epochs": 4,
        "step": 16,
        "monitor": "val/loss",
        "mode": mode,
    }
    assert summary["metrics"] == trainer.state.metrics
    assert {k: float(v) for k, v in rows[-1].items() if k not in ("epoch", "step")} == summary["metrics"]


def test_a_summary_already_in_the_record_is_continued_not_restarted(fit, tmp_path):
    # As on a resume: the record holds the earlier fit's best, which this fit does not beat.
    record = RunRecord(tmp_path, {"summary": {"best": 0.01, "best_epoch": 1, "final": "kept"}})
    fit(RecordSummary(record, "val/loss", "min"), max_epochs=2)
    summary = read_record(tmp_path / "run.json")["summary"]
    assert (summary["best"], summary["best_epoch"], summary["epochs"], summary["final"]) == (0.01, 1, 2, "kept")


class Seen(Callback):
    """After each batch's end, whether run.json was written since the last look (it deletes what it saw)."""

    order = 1000

    def __init__(self, run_dir):
        self.path, self.written = run_dir / "run.json", []

    def on_batch_end(self, state):
        self.written.append(self.path.exists())
        self.path.unlink(missing_ok=True)


@pytest.mark.parametrize(("seconds", "expected"), [(30, [True, False, False, False]), (0, [True] * 4)])
def test_the_heartbeat_is_written_at_the_first_step_then_at_most_every_heartbeat_seconds(
    fit, tmp_path, monkeypatch, seconds, expected
):
    monkeypatch.setattr("expresso.callbacks.record_summary.HEARTBEAT_SECONDS", seconds)
    seen = Seen(tmp_path)
    fit(RecordSummary(RunRecord(tmp_path, {}), "val/loss", "min"), seen, max_epochs=1)
    assert seen.written == expected  # 4 batches; a 4-step fit takes far less than 30 s
    assert read_record(tmp_path / "run.json")["heartbeat"]  # rewritten at the epoch's end
