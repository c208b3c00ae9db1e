"""Python experiment folders: hparams files layered by import, train_config in __main__.py, the run's name."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

from expresso.config import ConfigError, load_config
from expresso.config.experiments import experiment_of, infer_config
from expresso.config.files import FileProblem, read_file

BASE = 'hparams = {"hidden": [32], "lr": 0.01, "epochs": 3}\n'
WIDE = 'from .hparams import hparams as base\n\nhparams = {**base, "hidden": [64, 32]}\n'
MAIN = """\
def train_config(hparams):
    return {
        "model": {"class": "collections.OrderedDict", "hidden": hparams["hidden"]},
        "optimizer": {"class": "torch.optim.SGD", "lr": hparams["lr"]},
        "trainer": {"max_epochs": hparams["epochs"]},
    }


def infer_config(hparams, *args):
    return {"hidden": hparams["hidden"], "args": list(args)}


if __name__ == "__main__":
    raise SystemExit("imported as a module: this block does not run")
"""


def folder(root: Path, files: dict[str, str]) -> Path:
    experiment = root / "experiments" / "00_mlp"
    experiment.mkdir(parents=True)
    for name, text in files.items():
        (experiment / name).write_text(text)
    return experiment


def test_a_layered_hparams_file_trains_the_config_train_config_returns(tmp_path):
    experiment = folder(tmp_path, {"hparams.py": BASE, "wide.py": WIDE, "__main__.py": MAIN})

    config = load_config(experiment / "wide.py")

    assert config["name"] == "00_mlp-wide"
    assert config["model"] == {"class": "collections.OrderedDict", "hidden": [64, 32]}
    assert config["optimizer"] == {"class": "torch.optim.SGD", "lr": 0.01}
    assert config["trainer"]["max_epochs"] == 3
    recorded = experiment_of(experiment / "wide.py")
    assert recorded is not None
    assert recorded.record() == {
        "folder": str(experiment.resolve()),
        "file": "wide.py",
        "hparams": {"hidden": [64, 32], "lr": 0.01, "epochs": 3},
    }
    assert not [name for name in sys.modules if name.startswith("_expresso_folder_")]  # nothing cached


def test_reading_python_configs_writes_no_bytecode_into_their_folder(tmp_path, monkeypatch):
    """A __pycache__ beside them would pollute the user's configs (and be listed with a folder of configs)."""
    monkeypatch.setattr(sys, "dont_write_bytecode", False)  # as `make test` and most users run Python
    experiment = folder(tmp_path, {"hparams.py": BASE, "wide.py": WIDE, "__main__.py": MAIN})
    load_config(experiment / "wide.py")
    assert sorted(p.name for p in experiment.iterdir()) == ["__main__.py", "hparams.py", "wide.py"]
    assert sys.dont_write_bytecode is False  # put back


def test_without_main_the_hparams_dict_is_the_config_and_a_name_it_sets_wins(tmp_path):
    experiment = folder(tmp_path, {"hparams.py": 'hparams = {"name": "mine", "trainer": {"max_epochs": 2}}\n'})
    config = load_config(experiment / "hparams.py")
    assert (config["name"], config["trainer"]["max_epochs"]) == ("mine", 2)


def test_an_edited_hparams_file_is_read_again(tmp_path):
    experiment = folder(tmp_path, {"hparams.py": BASE, "wide.py": WIDE, "__main__.py": MAIN})
    assert load_config(experiment / "wide.py")["model"]["hidden"] == [64, 32]
    (experiment / "hparams.py").write_text(BASE.replace("0.01", "0.5"))
    assert load_config(experiment / "wide.py")["optimizer"]["lr"] == 0.5


def test_infer_config_gets_the_recorded_hparams_and_the_extra_arguments(tmp_path):
    experiment = folder(tmp_path, {"hparams.py": BASE, "__main__.py": MAIN})
    record = {"folder": str(experiment), "file": "hparams.py", "hparams": {"hidden": [8]}}
    assert infer_config(record, ["3", "8"]) == {"hidden": [8], "args": ["3", "8"]}
    (experiment / "__main__.py").write_text("def train_config(hparams):\n    return hparams\n")
    assert infer_config(record, []) is None  # no infer_config: predict's usual behaviour


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        (
            {"hparams.py": "hparams = [1, 2]\n"},
            "experiments/00_mlp/hparams.py: hparams: received [1, 2] (list), expected a dict",
        ),
        (
            {"hparams.py": BASE, "__main__.py": "def train_config(hparams):\n    return None\n"},
            "experiments/00_mlp/__main__.py: train_config: returned None (NoneType), expected a dict"
            " (a config: the tree a YAML experiment holds)",
        ),
        (
            {"hparams.py": BASE, "__main__.py": "def train_config(hparams):\n    return {'lr': hparams['lr_']}\n"},
            "experiments/00_mlp/__main__.py: train_config(hparams) raised KeyError: 'lr_'",
        ),
        (
            {"hparams.py": "from .missing import hparams\n"},
            "experiments/00_mlp/hparams.py: a relative import found no missing.py beside it in {folder}",
        ),
        (
            {"hparams.py": "hparams = {'when': object()}\n"},
            "experiments/00_mlp/hparams.py: hparams.when: received <object object at {address}> (object); a config holds"
            " only str, int, float, bool, None, lists and mappings (write a class as a dotted path string)",
        ),
    ],
    ids=["not-a-dict", "train_config-returns-None", "train_config-raises", "missing-sibling", "not-plain-data"],
)
def test_a_bad_experiment_is_one_problem_naming_the_file(tmp_path, files, expected):
    experiment = folder(tmp_path, files)
    with pytest.raises(FileProblem) as info:
        read_file(experiment / "hparams.py", "experiments/00_mlp/hparams.py")
    [problem] = [str(problem) for problem in info.value.problems]
    pattern = (
        re.escape(expected).replace(r"\{folder\}", re.escape(str(experiment))).replace(r"\{address\}", "0x[0-9a-f]+")
    )
    assert re.fullmatch(pattern, problem), problem


def test_a_config_file_imports_a_sibling_config_file(tmp_path):
    (tmp_path / "base.py").write_text('config = {"trainer": {"max_epochs": 4}}\n')
    (tmp_path / "exp.py").write_text('from .base import config as base\n\nconfig = {**base, "name": "layered"}\n')
    (tmp_path / "my.exp.py").write_text((tmp_path / "exp.py").read_text())  # a dotted stem imports its neighbours too
    for file in ("exp.py", "my.exp.py"):
        config = load_config(tmp_path / file)
        assert (config["name"], config["trainer"]["max_epochs"]) == ("layered", 4)
    with pytest.raises(ConfigError):
        load_config(tmp_path / "nothing.py")


def test_train_config_may_import_a_neighbour_while_it_runs_and_hparams_run_once(tmp_path):
    main = "def train_config(hparams):\n    from .sizes import WIDTH\n\n    return {'model': {'class': 'a.B', 'width': WIDTH}}\n"
    counted = "import builtins\n\nbuiltins.hparams_runs = getattr(builtins, 'hparams_runs', 0) + 1\n" + BASE
    experiment = folder(tmp_path, {"hparams.py": counted, "sizes.py": "WIDTH = 7\n", "__main__.py": main})
    import builtins

    try:
        assert load_config(experiment / "hparams.py")["model"] == {"class": "a.B", "width": 7}
        assert builtins.hparams_runs == 1
    finally:
        del builtins.hparams_runs
