"""Every snippet in README.md runs, and shows what it claims.

- ```python blocks run from the repository root and must succeed;
- ```bash lines that start with `expresso` run in order in a fresh folder and
  must exit 0 (training shortened by --dev-run; `make` lines are the setup
  commands themselves: CI runs `make test`); the lines that start a tracker's
  server (`tensorboard`, `mlflow ui`) serve until stopped: test_readme_trackers.py
  starts them on a trained run and reads it back through them (make test-slow,
  which installs their extras); no other line may appear;
- a ```yaml block whose first line is `# <path>` must match that file;
- a ```text block of `$ expresso ...` followed by its output must reproduce
  that output (stderr) with exit status 2.
"""

from __future__ import annotations

import csv
import json
import math
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BLOCK = re.compile(r"```(\w+)\n(.*?)```", re.S)


SERVERS = ("tensorboard ", "mlflow ui ")  # bash lines that start a server: test_readme_trackers.py runs them


def _blocks(kind: str) -> list[str]:
    text = (ROOT / "README.md").read_text()
    return [body for lang, body in BLOCK.findall(text) if lang == kind]


def bash_lines() -> list[str]:
    """Every command of the ```bash blocks, its comment cut off."""
    return [
        line.split("#")[0].strip()
        for body in _blocks("bash")
        for line in body.splitlines()
        if line.split("#")[0].strip()
    ]


def _expresso(args: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "expresso", *args], cwd=ROOT, capture_output=True, text=True, timeout=120
    )


def test_readme_has_snippets_of_every_kind():
    assert all(_blocks(kind) for kind in ("bash", "yaml", "python", "text"))
    assert _blocks("bash")[0].startswith("make demo")


@pytest.fixture(scope="module")
def python_snippets() -> list[subprocess.CompletedProcess]:
    """Every Python snippet, run at once (each is a process that imports torch and may train)."""
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", body], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for body in _blocks("python")
    ]
    results = []
    for process in processes:
        stdout, stderr = process.communicate(timeout=300)
        results.append(subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr))
    return results


@pytest.mark.parametrize("index", range(len(_blocks("python"))))
def test_python_snippet_runs(python_snippets, index):
    result = python_snippets[index]
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip(), "a snippet that prints nothing shows nothing"


def _expresso_lines() -> list[str]:
    """The main command block's lines (the Start a project block runs on its own, below)."""
    project = set(_project_lines())
    return [line for line in bash_lines() if line.startswith("expresso ") and line not in project]


def _project_lines() -> list[str]:
    """The lines of the block that starts a project with `expresso new`."""
    return [
        line.split("#")[0].strip()
        for body in _blocks("bash")
        if "expresso new " in body
        for line in body.splitlines()
        if line.split("#")[0].strip()
    ]


def test_every_readme_command_is_run_by_a_test():
    """A command line no test runs could go stale unseen: each is `make` (CI's own commands), `expresso` or a server."""
    assert [line for line in bash_lines() if not line.startswith(("make ", "expresso ", *SERVERS))] == []


def test_readme_commands_run_in_order(tmp_path):
    """The README's command block, run as written in a fresh folder (each epoch shortened to 2 batches).

    Train, then resume, in order; the commands that read the finished run start together, and those that
    need no run (config, graph) start beside the training.
    """
    lines = _expresso_lines()
    assert [line.split()[1] for line in lines] == [
        "train",
        "resume",
        "eval",
        "predict",
        "export",
        "runs",
        "plot",
        "report",
        "config",
        "config",
        "graph",
        "config",
        "sweep",
    ]
    run_dir = None

    def start(line: str) -> subprocess.Popen:
        line = line.replace("examples/", f"{ROOT}/examples/").replace("runs/digits-mlp/<run id>", str(run_dir))
        args = shlex.split(line)[1:]
        if args[0] in ("train", "sweep"):  # the sweep's trials beside, not among, the run the later lines read
            args += ["trainer.limit_batches=2", "--runs-root", "runs" if args[0] == "train" else "sweeps"]
        return subprocess.Popen(
            [sys.executable, "-m", "expresso", *args],
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def finish(started: dict[str, subprocess.Popen]) -> None:
        for line, process in started.items():
            _, stderr = process.communicate(timeout=300)
            assert process.returncode == 0, f"{line}\n{stderr}"

    train, resume, *reading, runless = lines[0], lines[1], *lines[2:8], lines[8:]
    independent = {line: start(line) for line in runless}
    finish({train: start(train)})
    [run_dir] = (tmp_path / "runs" / "digits-mlp").iterdir()
    finish({resume: start(resume)})
    # trained on from epoch 5 to 8, the schedule stretched to the new length
    lrs = [float(row["lr"]) for row in csv.DictReader((run_dir / "metrics.csv").open()) if row["lr"]]
    assert lrs == pytest.approx(
        [3e-3 * (1 + math.cos(math.pi * e / t)) / 2 for t, epochs in ((5, range(5)), (8, range(5, 8))) for e in epochs],
        rel=1e-12,
    )
    finish({line: start(line) for line in reading})
    finish(independent)
    assert (tmp_path / "predictions.csv").is_file()
    assert (run_dir / "eval-test.json").is_file()
    assert (tmp_path / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (tmp_path / "report.html").read_text().count('src="data:image/png;base64,') == 1  # the run's curves


# Four processes (~14 s): CI trains examples/demo (what `expresso new demo` writes, kept equal by a unit test)
# through docs/projects.md's lines; this runs the README's own lines in `make test-slow`.
@pytest.mark.slow
def test_readme_start_a_project_runs_in_order(tmp_path):
    """`expresso new demo`, its two examples trained at once (--dev-run 2), then predict with arguments."""
    new, *trainings, predict = _project_lines()
    assert [new.split()[1], *(line.split()[1] for line in trainings), predict.split()[1]] == [
        "new",
        "train",
        "train",
        "predict",
    ]

    def start(line: str) -> subprocess.Popen:
        args = shlex.split(line)[1:]
        if args[0] == "train":
            args += ["--dev-run", "2", "--runs-root", "runs"]
        return subprocess.Popen(
            [sys.executable, "-m", "expresso", *args],
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def finish(processes: list[subprocess.Popen]) -> None:
        for process in processes:
            _, stderr = process.communicate(timeout=300)
            assert process.returncode == 0, f"{process.args}\n{stderr}"

    finish([start(new)])
    finish([start(line) for line in trainings])
    [run_dir] = (tmp_path / "runs" / "00_baseline-wide").iterdir()
    finish([start(predict.replace("runs/00_baseline-wide/<run id>", str(run_dir)))])
    assert (run_dir / "predictions-infer.csv").read_text().splitlines()[0] == "digit,prediction,probability"
    [mlp] = (tmp_path / "runs" / "mlp").iterdir()
    assert json.loads((mlp / "run.json").read_text())["status"] == "completed"


@pytest.mark.parametrize("body", [b for b in _blocks("yaml") if b.startswith("# ")])
def test_yaml_snippet_matches_the_file_it_names(body):
    first, *rest = body.splitlines()
    path = ROOT / first[2:].strip()

    def code(lines):
        return [line.split("#")[0].rstrip() for line in lines if line.split("#")[0].strip()]

    assert code(rest) == code(path.read_text().splitlines())


@pytest.mark.parametrize("body", [b for b in _blocks("text") if b.startswith("$ expresso")])
def test_error_example_is_what_expresso_prints(body):
    command, *expected = body.strip().splitlines()
    result = _expresso(shlex.split(command[2:])[1:])
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == expected
