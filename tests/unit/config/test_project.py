"""Which folder is the project root (modules import from there) and which is the configs/ root (references resolve there)."""

from __future__ import annotations

import json

import pytest

from expresso import ConfigError, load_config

NESTED = "experiments/tune_lr/large/configs/exp.yaml"


def test_a_pyproject_toml_makes_its_folder_the_root_above_a_nested_configs_folder(write):
    root = write(
        {
            "pyproject.toml": "",
            NESTED: "model: models/m.yaml\n",
            "experiments/tune_lr/large/configs/models/m.yaml": "class: a.M\n",
        }
    )
    config = load_config(root / NESTED)
    assert config.project_root == root.resolve()
    # no configs/ at the root: the outermost configs/ below it resolves references
    assert config.project.configs == (root / "experiments/tune_lr/large/configs").resolve()
    assert config["model"] == {"class": "a.M"}


def test_the_roots_configs_folder_resolves_references_of_a_file_outside_it(write):
    root = write(
        {".git/HEAD": "", "configs/models/m.yaml": "class: top.M\n", "experiments/exp.yaml": "model: models/m.yaml\n"}
    )
    config = load_config(root / "experiments/exp.yaml")
    assert (config.project_root, config.project.how) == (root.resolve(), "the folder holding .git")
    assert config["model"] == {"class": "top.M"}


def test_the_nearest_marker_wins_and_a_git_file_counts(write):
    root = write(
        {"pyproject.toml": "", "sub/.git": "gitdir: ../.git/worktrees/sub\n", "sub/configs/exp.yaml": "name: x\n"}
    )
    config = load_config(root / "sub/configs/exp.yaml")
    assert (config.project_root, config.project.how) == ((root / "sub").resolve(), "the folder holding .git")


def test_a_configs_folder_with_its_own_git_is_not_the_root(write):
    """A configs/ kept as a git submodule holds a .git file; the project is the folder above it."""
    root = write(
        {"setup.cfg": "", "configs/.git": "gitdir: ../.git/modules/configs\n", "configs/exp.yaml": "name: x\n"}
    )
    config = load_config(root / "configs/exp.yaml")
    assert (config.project_root, config.project.how) == (root.resolve(), "the folder holding setup.cfg")


def test_without_markers_the_outermost_configs_folder_is_the_configs_root(write):
    root = write(
        {
            "configs/models/m.yaml": "class: outer.M\n",
            "configs/sub/configs/models/m.yaml": "class: inner.M\n",
            "configs/sub/configs/experiments/exp.yaml": "model: models/m.yaml\n",
        }
    )
    config = load_config(root / "configs/sub/configs/experiments/exp.yaml")
    assert (config.project_root, config.project.how) == (root.resolve(), "the folder holding configs/")
    assert config["model"] == {"class": "outer.M"}


def test_without_markers_or_configs_the_working_directory_is_the_root(write, in_tmp):
    write({"configs/models/m.yaml": "class: cwd.M\n", "elsewhere/exp.yaml": "model: models/m.yaml\n"})
    config = load_config("elsewhere/exp.yaml")
    assert config.project_root == in_tmp.resolve()
    assert (
        config.project.how
        == "the working directory, as no pyproject.toml, setup.py, setup.cfg, .git or configs/ is above the config"
    )
    assert config["model"] == {"class": "cwd.M"}


def test_a_run_folders_config_belongs_to_the_project_its_run_json_names(write, tmp_path):
    root = write(
        {
            "project/pyproject.toml": "",
            "project/configs/models/m.yaml": "class: a.M\n",
            "copied/run/config.yaml": "name: x\n",
        }
    )
    (root / "copied/run/run.json").write_text(json.dumps({"project_root": str(root / "project")}))
    (root / "copied/pyproject.toml").write_text("")  # a marker nearer the file loses to the recorded project
    config = load_config(root / "copied/run/config.yaml", ["+model=models/m.yaml"])
    assert (config.project_root, config.project.how) == (
        (root / "project").resolve(),
        "as run.json recorded it when the run started",
    )
    assert config["model"] == {"class": "a.M"}


def test_a_dict_belongs_to_the_project_around_the_working_directory(write, monkeypatch):
    root = write({"pyproject.toml": "", "configs/models/m.yaml": "class: a.M\n", "notebooks/.keep": ""})
    monkeypatch.chdir(root / "notebooks")
    config = load_config({"model": "models/m.yaml"})
    assert config.project_root == root.resolve()
    assert config["model"] == {"class": "a.M"}


def test_a_missing_top_level_module_says_where_the_project_root_is_and_why(write):
    root = write({"pyproject.toml": "", NESTED: "model: {class: my_project.models.Net}\n"})
    with pytest.raises(ConfigError) as info:
        load_config(root / NESTED, check=True)
    [problem] = info.value.problems
    assert (problem.key, problem.message) == (
        "model.class",
        "cannot import 'my_project.models.Net': no module named 'my_project'"
        f" (project root: {root.resolve()}, the folder holding pyproject.toml; modules are imported from there)",
    )
