"""A new user's first minutes: ``expresso new demo``, install it beside this checkout in a fresh venv, train, test.

The venv is fresh but not bare: a plain one would download torch and the
rest of expresso's dependencies (gigabytes, and CI has no network), so a
``.pth`` file lends it the site-packages of the interpreter running the tests
(``--system-site-packages`` would lend the base interpreter's, which has no
torch). A ``.pth`` line only adds a folder: the ``.pth`` files inside that
folder (the test interpreter's own editable install of expresso) are not
run, so the venv's ``expresso`` is the one this test installs from this
checkout. The venv gets no pip of its own (``--without-pip``): the one
lent with the test interpreter's setuptools, recent enough to build
editable wheels, installs into it, offline (``--no-index``), building with
what is installed (``--no-build-isolation``) and through the checkout's
constraints.txt, as every install in this project does.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def run(args: list, cwd: Path, env: dict) -> subprocess.CompletedProcess:
    result = subprocess.run([str(arg) for arg in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, f"{args}\n{result.stdout}\n{result.stderr}"
    return result


@pytest.mark.slow  # a venv, two editable installs and three torch processes: about a minute
def test_expresso_new_demo_installs_in_a_fresh_venv_trains_its_example_and_passes_its_own_test(tmp_path):
    env = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "VIRTUAL_ENV")}
    run([sys.executable, "-m", "expresso", "new", "demo"], tmp_path, {**env, "PYTHONPATH": str(REPO / "src")})
    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", "--without-pip", venv], tmp_path, env)
    python = venv / "bin" / "python"
    site = Path(
        run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], tmp_path, env).stdout.strip()
    )
    (site / "lent-from-the-test-interpreter.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")

    install = ["-m", "pip", "install", "-q", "--no-index", "--no-build-isolation", "-c", REPO / "constraints.txt"]
    run([python, *install, "-e", REPO, "-e", f"{tmp_path / 'demo'}[test]"], tmp_path, env)
    # from the venv's folder: in tmp_path, the project folder demo/ would be imported as a namespace package
    where = run([python, "-c", "import demo, expresso; print(expresso.__file__); print(demo.__file__)"], venv, env)
    assert where.stdout.splitlines() == [
        str(REPO / "src" / "expresso" / "__init__.py"),
        str(tmp_path / "demo" / "demo" / "__init__.py"),
    ]

    demo = tmp_path / "demo"
    trained = run([venv / "bin" / "expresso", "train", "configs/experiments/mlp.yaml", "--dev-run", "2"], demo, env)
    [run_dir] = [
        Path(line.split(": ", 1)[1]) for line in trained.stdout.splitlines() if line.startswith("run folder: ")
    ]
    assert (run_dir.parent.name, json.loads((run_dir / "run.json").read_text())["status"]) == ("mlp", "completed")
    tested = run([python, "-m", "pytest", "-q", "-p", "no:cacheprovider"], demo, env)
    assert tested.stdout.strip().splitlines()[-1].startswith("3 passed"), tested.stdout
