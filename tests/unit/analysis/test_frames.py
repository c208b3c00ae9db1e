"""``load_runs`` and ``load_history`` on run folders written by hand: every column checked against what was written.

The folders hold what a run leaves that these functions read (run.json,
config.yaml in expresso's YAML dialect, metrics.csv); their values are
chosen so each column can be told apart (a duration of 1 h 2 min 5 s, a
failed run without final metrics, a config value YAML 1.1 would misread).
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import expresso
from expresso.analysis.frames import AnalysisError
from expresso.analysis.read import RunsRootError
from expresso.config.files import dump_yaml

HISTORY = {
    "r1": "epoch,step,lr,train/loss,val/acc\n1,10,0.1,2.5,0.5\n2,20,0.05,1.25,0.75\n",
    "r2": "epoch,step,train/batch_loss,train/loss,val/acc\n0,5,3.0,,\n1,10,,2.0,0.25\n",
}


def write_run(root, experiment, run_id, *, lr, status="completed", final=None, history=None, extra=None):
    folder = root / experiment / run_id
    folder.mkdir(parents=True)
    summary = {
        "epochs": 2,
        "step": 20,
        "monitor": "val/acc",
        "mode": "max",
        "best": 0.75,
        "best_epoch": 2,
        "metrics": {"lr": 0.05, "val/acc": 0.75},
    }
    if final is not None:
        summary["final"] = {"weights": "checkpoints/best.ckpt", "epoch": 2, "step": 20, "metrics": final}
    record = {
        "name": experiment,
        "run_id": run_id,
        "status": status,
        "started_at": "2026-01-02T10:00:00+0000",
        "ended_at": "2026-01-02T11:02:05+0000",
        "summary": summary,
    }
    (folder / "run.json").write_text(json.dumps(record))
    config = {"name": experiment, "optimizer": {"class": "torch.optim.SGD", "lr": lr}, "model": {"hidden": [8, 4]}}
    (folder / "config.yaml").write_text(dump_yaml({**config, **(extra or {})}))
    if history is not None:
        (folder / "metrics.csv").write_text(history)
    return folder


@pytest.fixture
def root(tmp_path):
    write_run(tmp_path, "mlp", "r1", lr=0.1, final={"test/acc": 0.5, "test/loss": 1.5}, history=HISTORY["r1"])
    write_run(tmp_path / "nested", "cnn", "r2", lr=0.01, status="failed", history=HISTORY["r2"])
    return tmp_path


def test_a_run_is_one_row_of_identity_status_duration_progress_metrics_and_dotted_settings(root):
    runs = expresso.load_runs(root)
    assert list(runs["run_id"]) == ["r1", "r2"]  # sorted by path: mlp/r1 before nested/cnn/r2
    first = runs.iloc[0].to_dict()
    assert first == {
        "experiment": "mlp",
        "run_id": "r1",
        "path": str(root / "mlp" / "r1"),
        "status": "completed",
        "started_at": "2026-01-02T10:00:00+0000",
        "ended_at": "2026-01-02T11:02:05+0000",
        "duration": 3725.0,  # 1 h 2 min 5 s
        "epochs": 2,
        "step": 20,
        "monitor": "val/acc",
        "mode": "max",
        "best": 0.75,
        "best_epoch": 2,
        "final.test/acc": 0.5,
        "final.test/loss": 1.5,
        "last.lr": 0.05,
        "last.val/acc": 0.75,
        "name": "mlp",
        "optimizer.class": "torch.optim.SGD",
        "optimizer.lr": 0.1,
        "model.hidden": [8, 4],  # a list stays one value, as `expresso runs` shows it
    }
    second = runs.iloc[1]
    assert (second["status"], second["optimizer.lr"]) == ("failed", 0.01)
    assert second[["final.test/acc", "final.test/loss"]].isna().all()  # a run that ended before its final evaluation


def test_settings_are_read_in_expressos_yaml_dialect(tmp_path):
    """A run's config.yaml is written in expresso's dialect: YAML 1.1 would read 1:30 as 90 and a date as a date."""
    write_run(tmp_path, "mlp", "r1", lr=1e-3, extra={"note": {"ratio": "1:30", "day": "2026-01-02"}})
    row = expresso.load_runs(tmp_path).iloc[0]
    assert (row["optimizer.lr"], row["note.ratio"], row["note.day"]) == (0.001, "1:30", "2026-01-02")


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        ({"optimizer.lr": 0.01}, ["r2"]),
        ({"status": "completed", "experiment": "mlp"}, ["r1"]),
        ({"optimizer.lr": lambda lr: lr > 0.05}, ["r1"]),
        ({"final.test/acc": None}, ["r2"]),  # None matches a run without the value
        ("`optimizer.lr` < 0.05 and status == 'failed'", ["r2"]),
        ([{"experiment": "mlp"}, "duration > 3600"], ["r1"]),  # every filter of a list must match
        ({"optimizer.lr": 0.5}, []),
    ],
)
def test_a_filter_keeps_the_runs_that_match_it(root, given, kept):
    assert list(expresso.load_runs(root, filter=given)["run_id"]) == kept


def test_a_filter_on_a_column_the_runs_lack_is_refused_naming_the_closest(root):
    with pytest.raises(AnalysisError) as error:
        expresso.load_runs(root, filter={"optimizer.lrr": 0.1})
    assert str(error.value) == (
        "filter: no column 'optimizer.lrr' in these runs (did you mean 'optimizer.lr'?); they have 21: load_runs(...).columns"
    )


def test_a_filter_of_another_kind_or_a_query_pandas_cannot_read_is_refused_in_one_line(root):
    with pytest.raises(AnalysisError) as error:
        expresso.load_runs(root, filter=3)
    assert str(error.value) == (
        "filter: received a int (3); expected a mapping of column to value or callable, a query string, or a list of them"
    )
    with pytest.raises(AnalysisError, match=r"^filter 'best >': not a query these runs answer \(SyntaxError: "):
        expresso.load_runs(root, filter="best >")


def test_a_missing_root_is_refused_and_an_unreadable_run_is_skipped_with_a_warning(root):
    with pytest.raises(RunsRootError) as error:
        expresso.load_runs(root / "nowhere")
    assert str(error.value) == f"{root / 'nowhere'}: no such folder of runs"
    broken = write_run(root, "mlp", "r3", lr=0.2)
    (broken / "run.json").write_text('{"status": "comp')
    with pytest.warns(UserWarning) as warned:
        runs = expresso.load_runs(root)
    assert [str(w.message) for w in warned] == [f"skipped {broken}: unreadable run.json or config.yaml"]
    assert list(runs["run_id"]) == ["r1", "r2"]


def hand_read_history(root) -> list[tuple]:
    """metrics.csv of r1 then r2, one tuple per non-empty metric cell, read without expresso."""
    rows = []
    for folder in (root / "mlp" / "r1", root / "nested" / "cnn" / "r2"):
        lines = (folder / "metrics.csv").read_text().splitlines()
        header = lines[0].split(",")
        for line in lines[1:]:
            cells = dict(zip(header, line.split(",")))
            for metric in header[2:]:
                if cells[metric]:
                    experiment = folder.parent.name
                    rows.append((experiment, folder.name, str(folder), int(cells["epoch"]), int(cells["step"]), metric))
                    rows[-1] += (float(cells[metric]),)
    return rows


def test_load_history_is_every_metric_cell_of_metrics_csv_in_long_form(root):
    expected = hand_read_history(root)
    assert len(expected) == 9  # r1: 2 rows of 3 metrics; r2: a batch loss, then 2
    runs = expresso.load_runs(root)
    for given in (runs, list(runs["path"]), root, str(root)):
        history = expresso.load_history(given)
        assert list(history.columns) == ["experiment", "run_id", "path", "epoch", "step", "metric", "value"]
        assert list(history.itertuples(index=False, name=None)) == expected


def test_load_history_of_a_run_without_metrics_csv_has_no_rows_and_of_no_runs_an_empty_frame(root):
    empty = write_run(root / "other", "mlp", "r9", lr=0.1)  # no metrics.csv: stopped before its first row
    assert len(expresso.load_history([empty])) == 0
    assert len(expresso.load_history(expresso.load_runs(root, filter={"run_id": "none"}))) == 0


def test_the_gin_templates_names_are_the_same_functions():
    assert (expresso.load_C, expresso.load_H) == (expresso.load_runs, expresso.load_history)


def test_importing_expresso_imports_no_pandas():
    code = "import sys, expresso; print(sorted(m for m in ('pandas', 'torch') if m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
