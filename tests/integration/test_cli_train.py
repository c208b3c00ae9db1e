"""The run commands end to end: ``expresso train``, ``eval``, ``predict``, ``resume``, ``runs`` and ``init_from``.

Every command is a real ``python -m expresso`` process on real files; the
trainings start together once (conftest.py's ``trained``). eval and predict
are in test_cli_eval_predict.py.

The runs (all on scikit-learn's digits, shipped with scikit-learn):

- the four example experiments, in place, with ``--dev-run 2``;
- ``base``: tiny.yaml (the digits MLP, 2 epochs of 10 batches of 128) with
  ``trainer.mode=min`` on ``val/acc``, so best.ckpt holds the first epoch's
  weights and last.ckpt the second's: best and last differ, and each
  command taking ``--checkpoint`` shows which one it read;
- ``lr-variant``: tiny.yaml with ``optimizer.lr=0.01``. It and ``base`` share
  one runs root and start together on a frozen clock (fixtures/frozen_clock):
  two runs of one experiment in the same second, then listed by ``expresso runs``;
- ``hooked``: tiny.yaml plus a ``predict`` hook from the project's files.
"""

from __future__ import annotations

import platform
import resource
import shutil
import socket
import subprocess
import sys
import textwrap
from datetime import datetime
from pathlib import Path

import pytest
import torch
from cli_runs import (
    EXAMPLE_EXPERIMENTS,
    EXAMPLES,
    FROZEN_TIME,
    STEPS_PER_EPOCH,
    checkpoint_model,
    expresso,
    git_commit,
    load,
    one_line_error,
    only_run_dir,
    printed_metrics,
    read_config,
    read_history,
    read_record,
    run_dirs,
    table,
    tiny_run,
    together,
    weights_equal,
)
from second_try import differences_twice

from expresso import __version__ as EXPRESSO_VERSION


# -- expresso train ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("experiment", list(EXAMPLE_EXPERIMENTS))
def test_train_dev_run_of_each_example_leaves_a_complete_run_folder(trained, experiment):
    result, root = trained["results"][experiment], trained["roots"] / "examples"
    name = EXAMPLE_EXPERIMENTS[experiment]
    assert result.returncode == 0, result.stderr
    run_dir = only_run_dir(root, name)
    assert result.stdout.splitlines()[0] == f"run folder: {run_dir}"
    assert {path.name for path in run_dir.iterdir()} >= {
        "config.yaml",
        "run.json",
        "metrics.csv",
        "log.txt",
        "checkpoints",
    }

    record = read_record(run_dir)
    assert record["status"] == "completed"
    assert record["command"] == " ".join(["expresso", *map(str, trained["commands"][experiment])])
    started = datetime.strptime(record["started_at"], "%Y-%m-%dT%H:%M:%S%z")
    assert started <= datetime.strptime(record["ended_at"], "%Y-%m-%dT%H:%M:%S%z")
    assert record["git"]["commit"] == git_commit(EXAMPLES)
    assert record["git"]["dirty"] in ((True, False) if record["git"]["commit"] else (None,))
    assert record["host"] == socket.gethostname()
    assert record["versions"]["python"] == platform.python_version()
    assert record["versions"]["torch"] == torch.__version__
    assert record["versions"]["expresso"] == EXPRESSO_VERSION
    assert record["seed"] == 0
    assert record["device"].split(":")[0] == ("cuda" if torch.cuda.is_available() else "cpu")

    config = read_config(run_dir)
    assert config["name"] == name
    assert [config["trainer"][key] for key in ("max_epochs", "limit_epochs", "limit_batches")] == [
        1,
        1,
        2,
    ]  # what --dev-run 2 means
    history = read_history(run_dir)
    assert [(row["epoch"], row["step"]) for row in history] == [("1", "2")]  # epochs count from 1
    assert {"train/loss", "val/loss", "val/acc"} <= history[0].keys()
    epoch_lines = [line for line in (run_dir / "log.txt").read_text().splitlines() if line.startswith("epoch 1/1  ")]
    assert len(epoch_lines) == 1 and f"val/acc={float(history[0]['val/acc']):.4g}" in epoch_lines[0]
    assert load(run_dir / "checkpoints" / "last.ckpt")["loop"] == {
        "epoch": 1,
        "batch_index": 0,
        "step": 2,
        "stage": 0,
        "stage_epoch": 1,
        "stage_stopped": False,
        "stops": {},
        "stop_fit": False,
    }


def test_config_yaml_of_a_run_reproduces_its_weights(trained, tmp_path):
    original = only_run_dir(trained["roots"] / "examples", "digits-mlp")
    result = expresso("train", original / "config.yaml", "--runs-root", tmp_path / "again", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    again = only_run_dir(tmp_path / "again", "digits-mlp")
    assert read_config(again) == read_config(original)

    def weight_differences(a: Path, b: Path) -> list[str]:
        first, second = load(a / "checkpoints" / "last.ckpt"), load(b / "checkpoints" / "last.ckpt")
        return [] if weights_equal(first["models"]["model"], second["models"]["model"]) else [f"{a} != {b}"]

    def twice_more() -> list[str]:  # second_try.py: the comparison once more, two fresh processes
        roots = {name: ["train", original / "config.yaml", "--runs-root", tmp_path / name] for name in ("b", "c")}
        assert all(
            r.returncode == 0 for r in together({n: (args, None) for n, args in roots.items()}, tmp_path).values()
        )
        return weight_differences(
            only_run_dir(tmp_path / "b", "digits-mlp"), only_run_dir(tmp_path / "c", "digits-mlp")
        )

    assert differences_twice(lambda: weight_differences(original, again), twice_more) == []


def test_config_yaml_naming_project_files_trains_from_another_folder(hooked, tmp_path):
    result = expresso("train", hooked / "config.yaml", "--runs-root", tmp_path / "again", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert read_record(only_run_dir(tmp_path / "again", "hooked"))["status"] == "completed"


def test_runs_started_in_the_same_second_get_distinct_folders(trained):
    folders = [tiny_run(trained, 0.003), tiny_run(trained, 0.01)]
    stamp = datetime.fromtimestamp(FROZEN_TIME).strftime("%Y%m%d-%H%M%S")  # the frozen clock, in local time
    assert run_dirs(trained["roots"] / "table", "tiny") == sorted(folders)
    assert folders[0] != folders[1]
    assert all(folder.name.startswith(f"{stamp}-") for folder in folders), folders
    assert [read_record(folder)["run_id"] for folder in folders] == [folder.name for folder in folders]
    assert [trained["results"][name].stdout.splitlines()[0] for name in ("base", "lr-variant")] == [
        f"run folder: {f}" for f in folders
    ]


@pytest.mark.parametrize(
    "experiment, where",
    [("bad_key.yaml", "trainer.max_epoch: "), ("bad_class.yaml", "optimizer.class: ")],
    ids=["misspelt key", "unknown class"],
)
def test_bad_config_exits_2_with_one_line_naming_the_key_and_creates_no_run_folder(
    project, tmp_path, experiment, where
):
    config = f"configs/experiments/{experiment}"
    line = one_line_error(expresso("train", config, "--runs-root", tmp_path / "runs", cwd=project))
    assert line.startswith(f"expresso: error: {config}: {where}"), line
    assert ("'max_epochs'" if experiment == "bad_key.yaml" else "torch.optim.AdamW") in line  # the suggestion
    assert not (tmp_path / "runs").exists()


def test_a_component_rejecting_its_arguments_exits_2_and_creates_no_run_folder(project, tmp_path):
    result = expresso(
        "train", "configs/experiments/bad_dataset_argument.yaml", "--runs-root", tmp_path / "runs", cwd=project
    )
    assert not (tmp_path / "runs").exists()
    line = one_line_error(result)
    assert "dataset" in line and "val_fraction=0.9" in line, line


def test_dev_run_fraction_trains_and_evaluates_that_share_of_each_splits_batches(dev_fraction):
    from expresso.data import Digits

    config = read_config(dev_fraction)
    assert [config["trainer"][key] for key in ("max_epochs", "limit_epochs", "limit_batches", "batch_size")] == [
        1,
        1,
        0.1,
        32,
    ]
    assert read_record(dev_fraction)["dev_run"] == 0.1
    history = read_history(dev_fraction)
    assert [(row["epoch"], row["step"]) for row in history] == [("1", "4")]  # 0.1 of 40 batches, not the epoch's 40
    # Validation and test read 0.1 of their 9 batches rounded down, but at least one: their first 32 images (in order).
    model = checkpoint_model(dev_fraction, "last")  # one epoch: last is best, and what was validated and tested
    for split, reported in [
        ("val", history[0]["val/acc"]),
        ("test", read_record(dev_fraction)["summary"]["final"]["metrics"]["test/acc"]),
    ]:
        data = Digits(split=split)
        with torch.no_grad():
            correct = model(data.inputs).argmax(1) == data.labels
        assert float(reported) == pytest.approx(correct[:32].double().mean().item(), abs=1e-6), split
        assert float(reported) != pytest.approx(correct.double().mean().item(), abs=1e-6), (
            split
        )  # the whole split would tell apart


@pytest.mark.parametrize("value", ["0", "-1", "1.5", "1.0", "abc"])
def test_dev_run_other_than_a_positive_count_or_a_fraction_below_1_exits_2_and_creates_no_run_folder(
    project, tmp_path, value
):
    result = expresso(
        "train", "configs/experiments/tiny.yaml", "--dev-run", value, "--runs-root", tmp_path / "runs", cwd=project
    )
    assert result.returncode == 2
    assert result.stderr.splitlines()[-1] == (
        f"expresso train: error: argument --dev-run: expected a number of batches (an integer >= 1) or a fraction of them (0 < f < 1), "
        f"received {value!r}"
    )
    assert not (tmp_path / "runs").exists()


@pytest.mark.slow  # two processes under RLIMIT_FSIZE; CI's time is short
def test_a_start_that_cannot_write_its_first_files_exits_2_in_one_line_and_leaves_no_folder_it_made(project, tmp_path):
    """Files may not grow past 200 bytes (RLIMIT_FSIZE, as a full disk or a quota): the folders are made, config.yaml fails."""

    def start(root: Path, *extra) -> subprocess.Popen:
        limit = lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (200, 200))  # noqa: E731
        command = [sys.executable, "-m", "expresso", "train", "configs/experiments/tiny.yaml", "--runs-root", root]
        return subprocess.Popen([*command, *extra], cwd=project, stderr=subprocess.PIPE, text=True, preexec_fn=limit)

    (tmp_path / "held" / "tiny" / "other-run").mkdir(parents=True)  # another run's: it and its parents stay
    fresh, fixed = start(tmp_path / "runs"), start(tmp_path / "held", "--run-id", "job7")
    for process, run_dir in [(fresh, None), (fixed, tmp_path / "held" / "tiny" / "job7")]:
        _, stderr = process.communicate(timeout=300)
        result = subprocess.CompletedProcess(process.args, process.returncode, "", stderr)
        line = one_line_error(result)
        run_dir = run_dir or Path(line.split(": ")[2])
        assert line == (
            f"expresso: error: {run_dir}: cannot write the run's first files (File too large); "
            "no run was started and its folder was removed"
        )
    assert not (tmp_path / "runs").exists()
    assert sorted(path.relative_to(tmp_path).as_posix() for path in tmp_path.rglob("*")) == [
        "held",
        "held/tiny",
        "held/tiny/other-run",
    ]


# -- expresso resume (more epochs) ---------------------------------------------------------------------------
@pytest.mark.slow  # test_resume_settings.py resumes a finished run with more epochs in CI
def test_resume_with_two_more_epochs_continues_a_completed_run(base, tmp_path):
    run_dir = tmp_path / "copy" / base.name
    shutil.copytree(base, run_dir)  # a run folder is self-contained; the copy leaves base to the other tests
    before_history = (base / "metrics.csv").read_text().splitlines()
    before_config = read_config(base)

    result = expresso("resume", run_dir, "trainer.max_epochs=4", cwd=tmp_path)
    assert result.returncode == 0, result.stderr

    history = read_history(run_dir)
    assert [(row["epoch"], row["step"]) for row in history] == [(str(e), str(e * STEPS_PER_EPOCH)) for e in range(1, 5)]
    assert (run_dir / "metrics.csv").read_text().splitlines()[
        :3
    ] == before_history  # header and the 2 first epochs kept
    assert load(run_dir / "checkpoints" / "last.ckpt")["loop"] == {
        "epoch": 4,
        "batch_index": 0,
        "step": 4 * STEPS_PER_EPOCH,
        "stage": 0,
        "stage_epoch": 4,
        "stage_stopped": False,
        "stops": {},
        "stop_fit": False,
    }
    record = read_record(run_dir)
    assert record["status"] == "completed"
    assert record["summary"]["epochs"] == 4
    assert [resume["overrides"] for resume in record["resumes"]] == [["trainer.max_epochs=4"]]
    config = read_config(run_dir)
    assert config["trainer"]["max_epochs"] == 4
    # T_max: ${trainer.max_epochs} in the example's defaults: the schedule follows the new length, and the record says so
    assert config == {
        **before_config,
        "trainer": {**before_config["trainer"], "max_epochs": 4},
        "scheduler": {**before_config["scheduler"], "T_max": 4},
    }
    assert record["resumes"][0]["changes"] == {
        "scheduler.T_max": {"from": 2, "to": 4},
        "trainer.max_epochs": {"from": 2, "to": 4},
    }
    # the final printout reports the best checkpoint's model: its validation equals that epoch's row
    best = history[record["summary"]["best_epoch"] - 1]  # counted from 1
    assert printed_metrics(result.stdout)["val/acc"] == f"{float(best['val/acc']):.6g}"


# -- expresso runs -------------------------------------------------------------------------------------------
def test_runs_lists_every_run_with_a_column_for_the_setting_that_differs(trained, base):
    variant = tiny_run(trained, 0.01)
    result = expresso("runs", trained["roots"] / "table", cwd=trained["roots"])
    assert result.returncode == 0, result.stderr
    rows = table(result.stdout)
    # optimizer.lr differs between the two runs; trainer.batch_size (128 in both) does not.
    assert rows[0] == ["experiment", "run id", "status", "epochs", "best", "optimizer.lr"]
    by_id = {row[1]: row for row in rows[1:]}
    assert len(rows) == 3 and by_id.keys() == {base.name, variant.name}
    for run_dir, lr in ((base, "0.003"), (variant, "0.01")):
        summary = read_record(run_dir)["summary"]
        assert by_id[run_dir.name] == ["tiny", run_dir.name, "completed", "2", f"val/acc={summary['best']:.4g}", lr]


# -- init_from -------------------------------------------------------------------------------------------------
def write_init_experiment(project: Path, name: str, init_from: str, probe: Path) -> str:
    path = project / "configs" / "experiments" / f"{name}.yaml"
    path.write_text(
        textwrap.dedent(f"""\
        extends: tiny.yaml
        name: {name}
        init_from: {init_from}
        callbacks: [{{class: fixtures/probes.py:SaveStartState, path: {probe}}}]
        """)
    )
    return f"configs/experiments/{name}.yaml"


def test_init_from_starts_from_the_source_runs_last_weights_with_a_fresh_optimizer(project, base, tmp_path):
    probe = tmp_path / "start.pt"
    config = write_init_experiment(project, "init-good", f"{base}:last", probe)
    result = expresso("train", config, "--dev-run", "1", "--runs-root", tmp_path / "runs", cwd=project)
    assert result.returncode == 0, result.stderr
    run_dir = only_run_dir(tmp_path / "runs", "init-good")
    record = read_record(run_dir)
    assert (record["status"], record["init_from"]) == ("completed", str(base / "checkpoints" / "last.ckpt"))
    said = f"initialised the weights from {base / 'checkpoints' / 'last.ckpt'} (init_from: {base}:last)"
    assert (
        said in (run_dir / "log.txt").read_text().splitlines() and said in result.stderr
    )  # once the log exists, not before

    source_last, source_best = load(base / "checkpoints" / "last.ckpt"), load(base / "checkpoints" / "best.ckpt")
    start = torch.load(probe, weights_only=True)  # saved by SaveStartState at FIT_START, before any step
    assert weights_equal(start["models"]["model"], source_last["models"]["model"])
    assert not weights_equal(start["models"]["model"], source_best["models"]["model"])  # :last, not the default best
    (source_optimizer,), (start_optimizer,) = source_last["optimizers"].values(), start["optimizers"].values()
    assert source_optimizer["state"] != {}
    assert start_optimizer["state"] == {}  # no moments carried over: a fresh AdamW


def test_init_from_a_missing_run_exits_2_and_creates_no_run_folder(project, tmp_path):
    config = write_init_experiment(project, "init-bad", f"{tmp_path / 'no-such-run'}:last", tmp_path / "start.pt")
    line = one_line_error(expresso("train", config, "--runs-root", tmp_path / "runs", cwd=project))
    assert line.startswith(f"expresso: error: {config}: init_from: "), line
    assert str(tmp_path / "no-such-run") in line
    assert not (tmp_path / "runs").exists()
    assert not (tmp_path / "start.pt").exists()
