"""``expresso runs`` and how a run ends: a failed run says why, the table hides nothing silently, a closed pipe is quiet.

One real training fails (a user callback reads a metric that does not
exist); beside it, run folders written by hand (run.json and config.yaml
are all ``expresso runs`` reads) give the table more differing settings
than it has columns for and long values that differ only in the middle.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import yaml
from cli_runs import expresso, only_run_dir, read_record, start, table

FAILING = """\
extends: tiny.yaml
name: fails
callbacks: [{class: reads_metric/callbacks.py:PrintMetric, key: val/accuracy}]
"""
CALLBACK = """\
from expresso.engine.callback import Callback


class PrintMetric(Callback):
    def __init__(self, key: str):
        self.key = key

    def on_epoch_end(self, state) -> None:
        print(state.metrics[self.key])  # the metric is named val/acc: KeyError
"""
# differ only in the middle: shortened, both would read "/data/shared/s...dised/train.npy"
PATHS = [f"/data/shared/sets/{name}/preprocessed/standardised/train.npy" for name in ("digits", "letters")]
WEIGHTS = [
    f"checkpoints/pretrained/encoder-epoch-{epoch:03d}.pt" for epoch in (1, 2)
]  # shortened, both ends kept: still distinct
# the settings the hand-written runs change, in the order their configs list them; the table has columns for the first 5
CHANGED = [
    "dataset.path",
    "model.weights",
    "optimizer.lr",
    "optimizer.weight_decay",
    "trainer.max_epochs",
    "trainer.batch_size",
    "trainer.seed",
]


def write_run(folder, name: str, config: dict, status: str = "completed") -> None:
    folder.mkdir(parents=True)
    (folder / "run.json").write_text(
        json.dumps({"name": name, "run_id": folder.name, "status": status, "summary": {"epochs": 1}})
    )
    (folder / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))


@pytest.fixture(scope="module")
def listed(project, tmp_path_factory):
    """A failed training and two hand-written runs under one root, then ``expresso runs`` on it."""
    root = tmp_path_factory.mktemp("listed")
    (project / "configs/experiments/fails.yaml").write_text(FAILING)
    (project / "reads_metric").mkdir()
    (project / "reads_metric/callbacks.py").write_text(CALLBACK)
    failed = expresso("train", "configs/experiments/fails.yaml", "--dev-run", "1", "--runs-root", root, cwd=project)
    run_dir = only_run_dir(root, "fails")
    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    for i in range(2):  # "baseline" sorts before "fails": its config's key order is the columns' order
        changed = {
            "name": "baseline",
            "dataset": {**config["dataset"], "path": PATHS[i]},
            "model": {**config["model"], "weights": WEIGHTS[i]},
        }
        changed.update({key: value for key, value in config.items() if key not in changed})
        changed["optimizer"] = {**config["optimizer"], "lr": 0.1 * (i + 1), "weight_decay": 0.5 * i}
        changed["trainer"] = {**config["trainer"], "max_epochs": 3 + i, "batch_size": 16 * (i + 1), "seed": 10 + i}
        write_run(root / "baseline" / f"run-{i}", "baseline", changed)
    return {"failed": failed, "run_dir": run_dir, "runs": expresso("runs", root, cwd=root)}


def test_a_failed_run_records_the_error_type_and_message_in_run_json(listed):
    assert listed["failed"].returncode == 1, listed["failed"].stderr
    record = read_record(listed["run_dir"])
    assert record["status"] == "failed"
    assert record["error"] == {"type": "KeyError", "message": "'val/accuracy'"}


def test_a_failed_runs_traceback_goes_to_log_txt_and_once_to_the_console(listed):
    stderr, log = listed["failed"].stderr, (listed["run_dir"] / "log.txt").read_text()
    assert stderr.count("Traceback (most recent call last):") == 1 and stderr.endswith("KeyError: 'val/accuracy'\n"), (
        stderr
    )
    assert log.count("Traceback (most recent call last):") == 1 and log.endswith("KeyError: 'val/accuracy'\n"), log
    assert "print(state.metrics[self.key])" in log  # the user's line
    # the frames from the fit down to the user's line, as the console showed them below the command's own
    frames = log[log.index("Traceback (most recent call last):\n") :].split("\n", 1)[1]
    assert "run_fit" in frames and stderr.endswith(frames)


def test_runs_shows_a_failed_runs_reason_in_a_reason_column(listed):
    assert listed["runs"].returncode == 0, listed["runs"].stderr
    rows = table(listed["runs"].stdout)
    assert rows[0] == ["experiment", "run id", "status", "epochs", "best", *CHANGED[:5], "reason"]
    failed = next(row for row in rows if row[0] == "fails")
    assert (failed[2], failed[-1]) == ("failed", "KeyError: 'val/accuracy'")
    assert [row[-1] for row in rows if row[0] == "baseline"] == ["-", "-"]


def test_runs_names_the_differing_settings_it_has_no_column_for(listed):
    lines = listed["runs"].stdout.splitlines()
    assert len(lines) == 5  # the header, 3 runs, then the note
    assert lines[-1] == "(2 more differing settings not shown: trainer.batch_size, trainer.seed)"


def test_runs_shortens_long_values_in_the_middle_and_shows_in_full_those_that_would_look_alike(listed):
    rows = {row[1]: row for row in table(listed["runs"].stdout)[1:4]}
    column = {key: 5 + i for i, key in enumerate(CHANGED)}
    assert [rows[f"run-{i}"][column["dataset.path"]] for i in range(2)] == PATHS
    assert [rows[f"run-{i}"][column["model.weights"]] for i in range(2)] == [
        "checkpoints/pr...er-epoch-001.pt",
        "checkpoints/pr...er-epoch-002.pt",
    ]


LISTING_COST = """\
import sys, yaml.composer
from expresso.cli import main
composed = []
pure_python = yaml.composer.Composer.compose_document
yaml.composer.Composer.compose_document = lambda self: composed.append(1) or pure_python(self)
status = main(["runs", sys.argv[1]])
print("status", status, "pure-Python YAML parses", len(composed), "torch", "torch" in sys.modules, file=sys.stderr)
"""


def test_runs_reads_each_config_with_libyaml_and_never_imports_torch(listed):
    """What made ``expresso runs`` slow with 64 runs: PyYAML's pure-Python parser (~10 ms a config, 75% of the command).

    No timing here: the cause is what is asserted away. A config parsed the
    pure-Python way goes through ``yaml.composer.Composer``; libyaml's never does.
    """
    root = listed["run_dir"].parents[1]
    result = subprocess.run([sys.executable, "-c", LISTING_COST, root], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines()[-1] == "status 0 pure-Python YAML parses 0 torch False"
    assert table(result.stdout) == table(listed["runs"].stdout)  # the same table as the plain command's, 3 runs


def test_a_closed_stdout_ends_any_command_quietly_with_status_141(project, tmp_path):
    """``expresso runs | head -1``: the reader leaves after a line; ``expresso config | true``: before any."""
    name = "an-experiment-with-a-long-name-" * 4
    for i in range(600):  # ~100 kB of table: more than a pipe holds, so writing goes on after the reader left
        write_run(tmp_path / "runs" / f"e{i % 3}" / f"run-{i:04d}", f"{name}{i % 3}", {"seed": i % 2})
    config = start(["config", "configs/experiments/tiny.yaml"], project)
    config.stdout.close()  # before it prints: its first write finds no reader
    runs = start(["runs", tmp_path / "runs"], tmp_path)
    first_line = runs.stdout.readline()
    runs.stdout.close()
    results = {"runs": finish_closed(runs), "config": finish_closed(config)}
    assert first_line.split() == ["experiment", "run", "id", "status", "epochs", "best", "seed"]
    assert results == {"runs": (141, ""), "config": (141, "")}


def finish_closed(process: subprocess.Popen) -> tuple[int, str]:
    """The exit status and stderr of a process whose stdout this side already closed."""
    stderr = process.stderr.read()
    return process.wait(timeout=300), stderr
