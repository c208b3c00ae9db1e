"""The run commands end to end: ``expresso train``, ``eval``, ``predict``, ``resume``, ``runs`` and ``init_from``.

Every command is a real ``python -m expresso`` process on real files. Each
process spends ~3 s importing torch, so the trainings the tests read start
together in one module fixture (``trained``), and so do the eval and predict
commands (``on_base``): the cores overlap their start-up.

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

import csv
import json
import os
import platform
import re
import shutil
import socket
import subprocess
import sys
import textwrap
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from expresso import __version__ as EXPRESSO_VERSION

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples" / "digits"
FIXTURES = Path(__file__).parent / "fixtures"
FROZEN_CLOCK = FIXTURES / "frozen_clock"  # a sitecustomize that freezes time.strftime
FROZEN_TIME = 1_700_000_000  # 2023-11-14, 22:13:20 UTC
EXAMPLE_EXPERIMENTS = {
    "digits_mlp.yaml": "digits-mlp",
    "digits_cnn.yaml": "digits-cnn",
    "digits_gru.json": "digits-gru",
    "digits_mlp_parity.py": "digits-mlp-parity",
}
STEPS_PER_EPOCH = 10  # ceil(1257 training images / 128)
EXPERIMENTS = {
    "tiny.yaml": """\
        extends: digits_mlp.yaml
        name: tiny
        optimizer: {lr: 3.0e-3}
        # mode min: best.ckpt keeps the first (worst) epoch, so best and last differ.
        trainer: {max_epochs: 2, batch_size: 128, mode: min}
        """,
    "hooked.yaml": """\
        extends: tiny.yaml
        name: hooked
        predict: {class: fixtures/probes.py:scaled_prediction, _partial_: true}
        """,
    "bad_key.yaml": """\
        extends: tiny.yaml
        trainer: {max_epoch: 3}
        """,
    "bad_class.yaml": """\
        extends: tiny.yaml
        optimizer: {class: torch.optim.AdamX, lr: 0.001}
        """,
    "bad_dataset_argument.yaml": """\
        extends: tiny.yaml
        dataset: {val_fraction: 0.9}
        """,
}


# -- processes -----------------------------------------------------------------------------------------
def start(args: list, cwd: Path, env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "expresso", *map(str, args)],
        cwd=cwd, env={**os.environ, **(env or {})}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def finish(process: subprocess.Popen) -> subprocess.CompletedProcess:
    stdout, stderr = process.communicate(timeout=300)
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def expresso(*args, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    return finish(start(list(args), cwd, env))


def together(commands: dict[str, tuple[list, dict | None]], cwd: Path) -> dict[str, subprocess.CompletedProcess]:
    """Run several commands at once; their results by name."""
    processes = {name: start(args, cwd, env) for name, (args, env) in commands.items()}
    return {name: finish(process) for name, process in processes.items()}


def one_line_error(result: subprocess.CompletedProcess) -> str:
    """The single ``expresso: error: ...`` line a bad input must produce (exit status 2)."""
    assert result.returncode == 2, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("expresso: error: "), result.stderr
    return lines[0]


# -- run folders ------------------------------------------------------------------------------------------
def run_dirs(runs_root: Path, name: str) -> list[Path]:
    return sorted(path for path in (runs_root / name).glob("*") if path.is_dir())


def only_run_dir(runs_root: Path, name: str) -> Path:
    found = run_dirs(runs_root, name)
    assert len(found) == 1, found
    return found[0]


def read_record(run_dir: Path) -> dict:
    return json.loads((run_dir / "run.json").read_text())


def read_config(run_dir: Path) -> dict:
    return yaml.safe_load((run_dir / "config.yaml").read_text())


def read_history(run_dir: Path) -> list[dict]:
    with (run_dir / "metrics.csv").open(newline="") as handle:
        return list(csv.DictReader(handle))


def load(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)


def weights_equal(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[key], b[key]) for key in a)


def printed_metrics(stdout: str) -> dict[str, str]:
    """``  name  value`` lines of a train's or resume's final printout."""
    return dict(re.findall(r"^  (\S+)\s+(\S+)$", stdout, re.MULTILINE))


def table(stdout: str) -> list[list[str]]:
    """A printed table's rows, cells split on runs of 2+ spaces."""
    return [re.split(r"\s{2,}", line.strip()) for line in stdout.splitlines() if line.strip()]


def git_commit(folder: Path) -> str | None:
    result = subprocess.run(["git", "rev-parse", "HEAD"], cwd=folder, capture_output=True, text=True)
    return result.stdout.strip() if result.returncode == 0 else None


# -- fixtures -------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    """A copy of the digits example project, with the test experiments and fixtures/ (user code) in it."""
    root = tmp_path_factory.mktemp("project")
    shutil.copytree(EXAMPLES / "configs", root / "configs")
    shutil.copytree(FIXTURES, root / "fixtures", ignore=shutil.ignore_patterns("__pycache__"))
    for name, text in EXPERIMENTS.items():
        (root / "configs" / "experiments" / name).write_text(textwrap.dedent(text))
    return root


@pytest.fixture(scope="module")
def trained(project, tmp_path_factory) -> dict:
    """Every training the tests read, started at once; their results and runs roots by name."""
    roots = tmp_path_factory.mktemp("runs")
    tiny = "configs/experiments/tiny.yaml"
    frozen = {
        "PYTHONPATH": os.pathsep.join(filter(None, [str(FROZEN_CLOCK), os.environ.get("PYTHONPATH")])),
        "EXPRESSO_TEST_FROZEN_TIME": str(FROZEN_TIME),
    }
    commands = {
        experiment: (["train", EXAMPLES / "configs" / "experiments" / experiment, "--dev-run", "2", "--runs-root", roots / "examples"], None)
        for experiment in EXAMPLE_EXPERIMENTS
    }
    commands.update({
        "base": (["train", tiny, "--runs-root", roots / "table"], frozen),
        "lr-variant": (["train", tiny, "optimizer.lr=0.01", "--runs-root", roots / "table"], frozen),
        "hooked": (["train", "configs/experiments/hooked.yaml", "--dev-run", "1", "--runs-root", roots / "hooked"], None),
    })
    results = together(commands, cwd=project)
    return {"results": results, "roots": roots, "commands": {name: args for name, (args, _) in commands.items()}}


def tiny_run(trained, lr: float) -> Path:
    """The run of tiny.yaml under the shared root whose config has this learning rate."""
    for name in ("base", "lr-variant"):
        assert trained["results"][name].returncode == 0, trained["results"][name].stderr
    found = [run_dir for run_dir in run_dirs(trained["roots"] / "table", "tiny") if read_config(run_dir)["optimizer"]["lr"] == lr]
    assert len(found) == 1, found
    return found[0]


@pytest.fixture(scope="module")
def base(trained) -> Path:
    run_dir = tiny_run(trained, 0.003)
    summary = read_record(run_dir)["summary"]
    # What the eval and predict tests rely on: two epochs, best.ckpt from the first, last.ckpt from the second.
    assert (summary["epochs"], summary["best_epoch"]) == (2, 0), summary
    return run_dir


@pytest.fixture(scope="module")
def hooked(trained) -> Path:
    result = trained["results"]["hooked"]
    assert result.returncode == 0, result.stderr
    return only_run_dir(trained["roots"] / "hooked", "hooked")


@pytest.fixture(scope="module")
def digits_test_split():
    from expresso.data import Digits

    return Digits(split="test")


@pytest.fixture(scope="module")
def on_base(base, hooked, digits_test_split, tmp_path_factory) -> dict:
    """The eval and predict commands, all at once; their results, and where inputs and outputs are."""
    folder = tmp_path_factory.mktemp("predict")
    flat = digits_test_split.inputs.reshape(len(digits_test_split), -1).numpy()
    np.save(folder / "x.npy", flat[:5])  # the first 5 test images
    np.savetxt(folder / "x.csv", flat[5:8], delimiter=",")  # the next 3, 64 values per row
    paths = {
        "folder": folder,
        "p.npy": folder / "p.npy",
        "nohook.csv": folder / "nohook.csv",
        "hook.csv": folder / "hook.csv",
        "missing": folder / "no-such-run",
    }
    commands = {
        "eval-test": ["eval", base, "--split", "test"],
        "eval-last-val": ["eval", base, "--checkpoint", "last", "--split", "val"],
        "eval-missing": ["eval", paths["missing"], "--split", "test"],
        "predict": ["predict", base],
        "predict-npy": ["predict", base, "--input", folder / "x.npy"],
        "predict-csv": ["predict", base, "--input", folder / "x.csv", "--output", paths["p.npy"]],
        "predict-extra-no-hook": ["predict", base, "--output", paths["nohook.csv"], "scale=2.5"],
        "predict-hook": ["predict", hooked, "--output", paths["hook.csv"], "scale=2.5", "shift=3"],
    }
    results = together({name: (args, None) for name, args in commands.items()}, cwd=folder)
    return {"results": results, "paths": paths}


# -- expresso train ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("experiment", list(EXAMPLE_EXPERIMENTS))
def test_train_dev_run_of_each_example_leaves_a_complete_run_folder(trained, experiment):
    result, root = trained["results"][experiment], trained["roots"] / "examples"
    name = EXAMPLE_EXPERIMENTS[experiment]
    assert result.returncode == 0, result.stderr
    run_dir = only_run_dir(root, name)
    assert result.stdout.splitlines()[0] == f"run folder: {run_dir}"
    assert {path.name for path in run_dir.iterdir()} >= {"config.yaml", "run.json", "metrics.csv", "log.txt", "checkpoints"}

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
    assert (config["trainer"]["max_epochs"], config["trainer"]["limit_batches"]) == (1, 2)  # what --dev-run 2 means
    history = read_history(run_dir)
    assert [(row["epoch"], row["step"]) for row in history] == [("0", "2")]
    assert {"train/loss", "val/loss", "val/acc"} <= history[0].keys()
    epoch_lines = [line for line in (run_dir / "log.txt").read_text().splitlines() if line.startswith("epoch 1/1  ")]
    assert len(epoch_lines) == 1 and f"val/acc={float(history[0]['val/acc']):.4g}" in epoch_lines[0]
    assert load(run_dir / "checkpoints" / "last.ckpt")["loop"] == {"epoch": 1, "batch_index": 0, "step": 2}


def test_config_yaml_of_a_run_reproduces_its_weights(trained, tmp_path):
    original = only_run_dir(trained["roots"] / "examples", "digits-mlp")
    result = expresso("train", original / "config.yaml", "--runs-root", tmp_path / "again", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    again = only_run_dir(tmp_path / "again", "digits-mlp")
    assert read_config(again) == read_config(original)
    first, second = load(original / "checkpoints" / "last.ckpt"), load(again / "checkpoints" / "last.ckpt")
    assert weights_equal(first["models"]["model"], second["models"]["model"])


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
    assert [trained["results"][name].stdout.splitlines()[0] for name in ("base", "lr-variant")] == [f"run folder: {f}" for f in folders]


@pytest.mark.parametrize(
    "experiment, where",
    [("bad_key.yaml", "trainer.max_epoch: "), ("bad_class.yaml", "optimizer.class: ")],
    ids=["misspelt key", "unknown class"],
)
def test_bad_config_exits_2_with_one_line_naming_the_key_and_creates_no_run_folder(project, tmp_path, experiment, where):
    config = f"configs/experiments/{experiment}"
    line = one_line_error(expresso("train", config, "--runs-root", tmp_path / "runs", cwd=project))
    assert line.startswith(f"expresso: error: {config}: {where}"), line
    assert ("'max_epochs'" if experiment == "bad_key.yaml" else "torch.optim.AdamW") in line  # the suggestion
    assert not (tmp_path / "runs").exists()


def test_a_component_rejecting_its_arguments_exits_2_and_creates_no_run_folder(project, tmp_path):
    result = expresso("train", "configs/experiments/bad_dataset_argument.yaml", "--runs-root", tmp_path / "runs", cwd=project)
    assert not (tmp_path / "runs").exists()
    line = one_line_error(result)
    assert "dataset" in line and "val_fraction=0.9" in line, line


def test_dev_run_0_exits_2_and_creates_no_run_folder(project, tmp_path):
    result = expresso("train", "configs/experiments/tiny.yaml", "--dev-run", "0", "--runs-root", tmp_path / "runs", cwd=project)
    assert result.returncode == 2
    assert "argument --dev-run: expected a positive integer, received '0'" in result.stderr
    assert not (tmp_path / "runs").exists()


# -- expresso eval -----------------------------------------------------------------------------------------
def test_eval_of_the_best_checkpoint_gives_the_test_metrics_the_training_reported(trained, base, on_base):
    result = on_base["results"]["eval-test"]
    assert result.returncode == 0, result.stderr
    written = json.loads((base / "eval-test.json").read_text())
    final = read_record(base)["summary"]["final"]
    assert written["checkpoint"] == str(base / "checkpoints" / "best.ckpt")
    assert written["split"] == "test"
    assert written["metrics"] == {"test/loss": final["test/loss"], "test/acc": final["test/acc"]}
    assert printed_metrics(trained["results"]["base"].stdout)["test/acc"] == f"{written['metrics']['test/acc']:.6g}"
    assert table(result.stdout) == [
        ["metric", "value"],
        ["test/loss", f"{final['test/loss']:.6g}"],
        ["test/acc", f"{final['test/acc']:.6g}"],
        [f"written: {base / 'eval-test.json'}"],
    ]


def test_eval_of_the_last_checkpoint_on_val_gives_the_last_epochs_validation(base, on_base):
    result = on_base["results"]["eval-last-val"]
    assert result.returncode == 0, result.stderr
    written = json.loads((base / "eval-val.json").read_text())
    summary = read_record(base)["summary"]
    last_epoch = read_history(base)[-1]
    assert written["checkpoint"] == str(base / "checkpoints" / "last.ckpt")
    assert written["metrics"] == {"val/loss": summary["metrics"]["val/loss"], "val/acc": summary["metrics"]["val/acc"]}
    assert repr(written["metrics"]["val/acc"]) == last_epoch["val/acc"]
    assert written["metrics"]["val/acc"] != summary["best"]  # not the best (first) epoch's weights


def test_eval_of_a_missing_run_folder_exits_2(on_base):
    line = one_line_error(on_base["results"]["eval-missing"])
    assert line.startswith(f"expresso: error: {on_base['paths']['missing']}: not a run folder"), line
    assert not on_base["paths"]["missing"].exists()


# -- expresso predict --------------------------------------------------------------------------------------
def read_csv_columns(path: Path) -> tuple[list[str], np.ndarray]:
    header = path.read_text().splitlines()[0].split(",")
    return header, np.loadtxt(path, delimiter=",", skiprows=1, ndmin=2)


def test_predict_writes_one_row_per_test_sample_predicting_the_argmax(base, on_base, digits_test_split):
    result = on_base["results"]["predict"]
    assert result.returncode == 0, result.stderr
    header, rows = read_csv_columns(base / "predictions-test.csv")
    assert header == ["prediction", *(f"output_{i}" for i in range(10))]
    assert rows.shape == (len(digits_test_split), 11)
    assert np.array_equal(rows[:, 0], rows[:, 1:].argmax(1))
    # The default checkpoint is best.ckpt: the one whose test accuracy the training reported.
    accuracy = float((rows[:, 0] == digits_test_split.labels.numpy()).mean())
    assert accuracy == pytest.approx(read_record(base)["summary"]["final"]["test/acc"], abs=1e-6)


def test_predict_on_an_npy_file_gives_one_row_per_input(base, on_base):
    result = on_base["results"]["predict-npy"]
    assert result.returncode == 0, result.stderr
    header, rows = read_csv_columns(base / "predictions-x.csv")
    _, split_rows = read_csv_columns(base / "predictions-test.csv")
    assert header[0] == "prediction"
    assert rows.shape == (5, 11)
    assert np.allclose(rows, split_rows[:5], rtol=1e-6, atol=1e-6)  # the same images give the same outputs


def test_predict_on_a_csv_file_writes_the_npy_output_asked_for(base, on_base):
    result = on_base["results"]["predict-csv"]
    assert result.returncode == 0, result.stderr
    written = np.load(on_base["paths"]["p.npy"])
    _, split_rows = read_csv_columns(base / "predictions-test.csv")
    assert written.shape == (3, 11)  # prediction, then the 10 outputs
    assert np.array_equal(written[:, 0], written[:, 1:].argmax(1))
    assert np.allclose(written, split_rows[5:8], rtol=1e-6, atol=1e-6)


def test_predict_extra_arguments_without_a_predict_hook_exit_2(on_base):
    line = one_line_error(on_base["results"]["predict-extra-no-hook"])
    assert "['scale']" in line and "`predict` hook" in line, line
    assert not on_base["paths"]["nohook.csv"].exists()


def test_predict_extra_arguments_reach_the_configs_predict_hook(on_base, digits_test_split):
    result = on_base["results"]["predict-hook"]
    assert result.returncode == 0, result.stderr
    header, rows = read_csv_columns(on_base["paths"]["hook.csv"])
    assert header == ["prediction", "scale", "shift"]
    assert rows.shape == (len(digits_test_split), 3)
    assert set(rows[:, 1]) == {2.5} and set(rows[:, 2]) == {3.0}
    assert set(rows[:, 0]) <= set(range(10))


# -- expresso resume (more epochs) ---------------------------------------------------------------------------
def test_resume_with_two_more_epochs_continues_a_completed_run(base, tmp_path):
    run_dir = tmp_path / "copy" / base.name
    shutil.copytree(base, run_dir)  # a run folder is self-contained; the copy leaves base to the other tests
    before_history = (base / "metrics.csv").read_text().splitlines()
    before_config = read_config(base)

    result = expresso("resume", run_dir, "trainer.max_epochs=4", cwd=tmp_path)
    assert result.returncode == 0, result.stderr

    history = read_history(run_dir)
    assert [(row["epoch"], row["step"]) for row in history] == [(str(e), str((e + 1) * STEPS_PER_EPOCH)) for e in range(4)]
    assert (run_dir / "metrics.csv").read_text().splitlines()[:3] == before_history  # header and the 2 first epochs kept
    assert load(run_dir / "checkpoints" / "last.ckpt")["loop"] == {"epoch": 4, "batch_index": 0, "step": 4 * STEPS_PER_EPOCH}
    record = read_record(run_dir)
    assert record["status"] == "completed"
    assert record["summary"]["epochs"] == 4
    assert [resume["overrides"] for resume in record["resumes"]] == [["trainer.max_epochs=4"]]
    config = read_config(run_dir)
    assert config["trainer"]["max_epochs"] == 4
    assert config == {**before_config, "trainer": {**before_config["trainer"], "max_epochs": 4}}
    # the final printout reports the best checkpoint's model: its validation equals that epoch's row
    best = history[record["summary"]["best_epoch"]]
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
    path.write_text(textwrap.dedent(f"""\
        extends: tiny.yaml
        name: {name}
        init_from: {init_from}
        callbacks: [{{class: fixtures/probes.py:SaveStartState, path: {probe}}}]
        """))
    return f"configs/experiments/{name}.yaml"


def test_init_from_starts_from_the_source_runs_last_weights_with_a_fresh_optimizer(project, base, tmp_path):
    probe = tmp_path / "start.pt"
    config = write_init_experiment(project, "init-good", f"{base}:last", probe)
    result = expresso("train", config, "--dev-run", "1", "--runs-root", tmp_path / "runs", cwd=project)
    assert result.returncode == 0, result.stderr
    assert read_record(only_run_dir(tmp_path / "runs", "init-good"))["status"] == "completed"

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
