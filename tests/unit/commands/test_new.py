"""``expresso new``'s templates: what a project holds, the expresso versions it accepts, what git ignores in it."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from expresso.commands import new
from expresso.commands.new import TEMPLATES_BY_NAME, render, requirement

SHARED = {
    ".gitignore",
    "README.md",
    "pyproject.toml",
    "configs/datasets/digits.yaml",
    "configs/loggers/mlflow.yaml",
    "configs/loggers/tensorboard.yaml",
    "configs/profiles/sample.yaml",
    "demo/__init__.py",
    "demo/datasets.py",
    "demo/models.py",
    "demo/transforms.py",
    "tests/test_project.py",
}
OWN = {
    "classification": {
        "configs/datasets/digits_shifted.yaml",
        "configs/experiments/mlp.yaml",
        "configs/models/mlp.yaml",
        "configs/tasks/digits.yaml",
        "experiments/00_baseline/__main__.py",
        "experiments/00_baseline/hparams.py",
        "experiments/00_baseline/wide.py",
    },
    "autoencoder": {
        "configs/datasets/digits_noisy.yaml",
        "configs/experiments/autoencoder.yaml",
        "configs/models/autoencoder.yaml",
        "configs/tasks/reconstruction.yaml",
    },
    "gan": {
        "configs/experiments/gan.yaml",
        "configs/models/discriminator.yaml",
        "configs/models/generator.yaml",
        "configs/tasks/digits.yaml",
    },
}


@pytest.mark.parametrize("template", sorted(TEMPLATES_BY_NAME))
def test_a_project_holds_the_shared_files_and_its_templates_and_no_placeholder(template):
    files = render("demo", template)
    assert set(files) == SHARED | OWN[template]
    assert [path for path, text in files.items() if "{{" in text] == []
    assert "class: demo.models." in "".join(text for path, text in files.items() if path.startswith("configs/models/"))


@pytest.mark.parametrize(("version", "expected"), [("0.1.0", ">=0.1.0,<0.2"), ("1.4.2", ">=1.4.2,<2")])
def test_a_project_accepts_expresso_up_to_the_next_minor_0x_or_major_release(monkeypatch, version, expected):
    monkeypatch.setattr(new, "__version__", version)
    assert requirement() == expected


def test_the_gan_project_asks_for_the_plots_extra_its_image_grid_needs():
    assert 'dependencies = ["torch-expresso[plots]>=' in render("demo", "gan")["pyproject.toml"]
    assert 'dependencies = ["torch-expresso>=' in render("demo", "classification")["pyproject.toml"]


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_git_ignores_runs_data_and_every_profile_but_the_sample(tmp_path):
    for relative, text in render("demo", "classification").items():
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).write_text(text)
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    asked = [
        "runs/mlp/1/config.yaml",
        "data/digits.npz",
        "configs/profiles/me.yaml",
        "configs/profiles/sample.yaml",
        "configs/experiments/mlp.yaml",
        "demo/models.py",
    ]
    result = subprocess.run(["git", "check-ignore", *asked], cwd=tmp_path, capture_output=True, text=True)
    assert result.stdout.split() == ["runs/mlp/1/config.yaml", "data/digits.npz", "configs/profiles/me.yaml"]


def test_examples_demo_is_what_expresso_new_demo_writes():
    """examples/demo is the docs' runnable copy of a new project: it must not drift from the template."""
    root = Path(__file__).resolve().parents[3] / "examples" / "demo"
    written = {
        path.relative_to(root).as_posix(): path.read_text()
        for path in root.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    }
    assert written == render("demo", "classification")
