"""Composing one tree from files: file references and the configs/ root (``extends`` and cycles: test_extends.py; which folder is the configs/ root: test_project.py)."""

from __future__ import annotations

import dataclasses

import pytest

from expresso import ConfigError, load_config
from expresso.config.schema import SETTINGS


def messages(excinfo) -> list[str]:
    return [str(problem) for problem in excinfo.value.problems]


# -- file references ---------------------------------------------------------

COMPONENT = "class: my_project.parts.Thing\nsize: 3\n"


@pytest.mark.parametrize("key", ["dataset", "model", "loss", "optimizer", "scheduler"])
def test_reference_at_a_component_key_is_replaced_by_the_files_tree(write, key):
    root = write({"configs/parts/thing.yaml": COMPONENT, "configs/exp.yaml": f"{key}: parts/thing.yaml\n"})
    config = load_config(root / "configs/exp.yaml")
    assert config[key] == {"class": "my_project.parts.Thing", "size": 3}


def test_reference_at_task_is_replaced_by_the_files_values(write):
    root = write(
        {"configs/tasks/t.yaml": "num_classes: 3\nvocab_size: 50\n", "configs/exp.yaml": "task: tasks/t.yaml\n"}
    )
    assert load_config(root / "configs/exp.yaml")["task"] == {"num_classes": 3, "vocab_size": 50}


@pytest.mark.parametrize(
    ("key", "text", "changed"),
    [
        ("trainer", "max_epochs: 3\nseed: 7\n", {"max_epochs": 3, "seed": 7}),
        ("dataloader", "num_workers: 2\n", {"num_workers": 2}),
    ],
)
def test_reference_at_a_settings_key_is_replaced_by_the_file_and_defaults_filled(write, key, text, changed):
    root = write({f"configs/{key}/fast.yaml": text, "configs/exp.yaml": f"{key}: {key}/fast.yaml\n"})
    config = load_config(root / "configs/exp.yaml")
    defaults = dataclasses.asdict(SETTINGS[key]())
    assert config[key] == {**defaults, **changed}


def test_reference_in_each_metrics_entry_is_replaced(write):
    root = write(
        {
            "configs/metrics/acc.yaml": "class: torchmetrics.classification.MulticlassAccuracy\n",
            "configs/metrics/f1.json": '{"class": "torchmetrics.classification.MulticlassF1Score", "average": "macro"}',
            "configs/exp.yaml": "metrics:\n  acc: metrics/acc.yaml\n  f1: metrics/f1.json\n",
        }
    )
    assert load_config(root / "configs/exp.yaml")["metrics"] == {
        "acc": {"class": "torchmetrics.classification.MulticlassAccuracy"},
        "f1": {"class": "torchmetrics.classification.MulticlassF1Score", "average": "macro"},
    }


def test_reference_in_each_callbacks_entry_is_replaced(write):
    root = write(
        {
            "configs/callbacks/stop.yaml": "class: expresso.callbacks.EarlyStopping\npatience: 3\n",
            "configs/exp.yaml": "callbacks:\n  - callbacks/stop.yaml\n  - {class: my_project.cb.Print}\n",
        }
    )
    assert load_config(root / "configs/exp.yaml")["callbacks"] == [
        {"class": "expresso.callbacks.EarlyStopping", "patience": 3},
        {"class": "my_project.cb.Print"},
    ]


def test_reference_in_loggers_entries_is_replaced_and_builtin_names_stay(write):
    root = write(
        {
            "configs/loggers/tb.yaml": "class: my_project.loggers.TB\nlog_dir: tb\n",
            "configs/exp.yaml": "loggers: [csv, loggers/tb.yaml]\n",
        }
    )
    assert load_config(root / "configs/exp.yaml")["loggers"] == [
        "csv",
        {"class": "my_project.loggers.TB", "log_dir": "tb"},
    ]


def test_reference_for_a_whole_collection_is_replaced(write):
    root = write(
        {
            "configs/metrics/all.yaml": "acc: {class: a.Acc}\nf1: {class: a.F1}\n",
            "configs/exp.yaml": "metrics: metrics/all.yaml\n",
        }
    )
    assert load_config(root / "configs/exp.yaml")["metrics"] == {"acc": {"class": "a.Acc"}, "f1": {"class": "a.F1"}}


def test_yaml_references_json_which_references_python(write):
    root = write(
        {
            "configs/exp.yaml": "metrics: metrics/all.json\n",
            "configs/metrics/all.json": '{"acc": "acc.py", "top5": {"class": "a.TopK", "k": 5}}',
            "configs/metrics/acc.py": "config = {'class': 'a.Acc', 'average': 'micro'}\n",
        }
    )
    assert load_config(root / "configs/exp.yaml")["metrics"] == {
        "acc": {"class": "a.Acc", "average": "micro"},
        "top5": {"class": "a.TopK", "k": 5},
    }


def test_python_config_extends_json_which_references_yaml(write):
    root = write(
        {
            "configs/exp.py": "config = {'extends': 'base.json', 'optimizer': {'class': 'a.Opt', 'lr': 0.5}}\n",
            "configs/base.json": '{"model": "models/net.yaml", "optimizer": {"class": "a.Opt", "lr": 0.1}}',
            "configs/models/net.yaml": "class: a.Net\nhidden: 8\n",
        }
    )
    config = load_config(root / "configs/exp.py")
    assert config["model"] == {"class": "a.Net", "hidden": 8}
    assert config["optimizer"] == {"class": "a.Opt", "lr": 0.5}
    assert config["name"] == "exp"


def test_reference_resolves_against_the_referencing_files_folder_before_the_configs_root(write):
    root = write(
        {
            "configs/models/mlp.yaml": "class: root.MLP\n",
            "configs/experiments/models/mlp.yaml": "class: local.MLP\n",
            "configs/models/cnn.yaml": "class: root.CNN\n",
            "configs/experiments/exp.yaml": "model: models/mlp.yaml\ndataset: models/cnn.yaml\n",
        }
    )
    config = load_config(root / "configs/experiments/exp.yaml")
    assert config["model"] == {"class": "local.MLP"}
    assert config["dataset"] == {"class": "root.CNN"}


def test_absolute_reference_is_read_as_is(write, tmp_path):
    root = write({"shared/net.yaml": "class: a.Net\n"})
    write({"configs/exp.yaml": f"model: {root / 'shared/net.yaml'}\n"})
    assert load_config(root / "configs/exp.yaml")["model"] == {"class": "a.Net"}


def test_without_a_configs_folder_references_resolve_only_next_to_the_file(write, in_tmp):
    write({"project/exp.yaml": "model: models/m.yaml\n", "models/m.yaml": "class: a.M\n"})
    with pytest.raises(ConfigError) as info:
        load_config("project/exp.yaml")
    assert messages(info) == [
        "project/exp.yaml: model: file reference 'models/m.yaml' not found (looked in project/models)"
    ]


@pytest.mark.parametrize(
    ("text", "key", "expected"),
    [
        ("model: {class: a.Net, weights: w.yaml}\n", "model", {"class": "a.Net", "weights": "w.yaml"}),
        (
            "model: {class: a.Net, head: {class: a.Head, init: init.json}}\n",
            "model",
            {"class": "a.Net", "head": {"class": "a.Head", "init": "init.json"}},
        ),
        (
            "task: {vocab: vocab.json, splits: [a.yaml, b.py]}\n",
            "task",
            {"vocab": "vocab.json", "splits": ["a.yaml", "b.py"]},
        ),
        ("callbacks: [{class: a.Save, path: best.yaml}]\n", "callbacks", [{"class": "a.Save", "path": "best.yaml"}]),
    ],
)
def test_file_name_below_a_component_stays_a_string(write, text, key, expected):
    root = write({"configs/exp.yaml": text})
    assert load_config(root / "configs/exp.yaml")[key] == expected


def test_name_ending_in_yaml_stays_a_string(write):
    root = write({"configs/exp.yaml": "name: run.yaml\n"})
    assert load_config(root / "configs/exp.yaml")["name"] == "run.yaml"


def test_missing_reference_names_the_referencing_file_key_and_a_close_file(write, in_tmp):
    write({"configs/models/mlp.yaml": "class: a.MLP\n", "configs/experiments/exp.yaml": "model: models/mpl.yaml\n"})
    with pytest.raises(ConfigError) as info:
        load_config("configs/experiments/exp.yaml")
    assert messages(info) == [
        "configs/experiments/exp.yaml: model: file reference 'models/mpl.yaml' not found"
        " (looked in configs/experiments/models and configs/models); did you mean 'configs/models/mlp.yaml'?"
    ]


def test_missing_reference_in_a_collection_entry_names_the_entry_key(write, in_tmp):
    write({"configs/exp.yaml": "metrics:\n  acc: metrics/acc.yaml\n"})
    with pytest.raises(ConfigError) as info:
        load_config("configs/exp.yaml")
    assert messages(info) == [
        "configs/exp.yaml: metrics.acc: file reference 'metrics/acc.yaml' not found (looked in configs/metrics)"
    ]


def test_every_missing_reference_is_reported_at_once(write, in_tmp):
    write({"configs/exp.yaml": "model: m.yaml\ndataset: d.yaml\nextends: base.yaml\n"})
    with pytest.raises(ConfigError) as info:
        load_config("configs/exp.yaml")
    keys = [problem.key for problem in info.value.problems]
    assert keys == ["extends", "model", "dataset"]


def test_missing_reference_suggests_no_unrelated_file(write, in_tmp):
    write({"configs/models/mlp.yaml": "class: a.MLP\n", "configs/exp.yaml": "model: models/cnn.yaml\n"})
    with pytest.raises(ConfigError) as info:
        load_config("configs/exp.yaml")
    assert "did you mean" not in str(info.value)


def test_reference_to_an_empty_file_is_an_error(write, in_tmp):
    write({"configs/models/new.yaml": "", "configs/exp.yaml": "model: models/new.yaml\n"})
    with pytest.raises(ConfigError) as info:
        load_config("configs/exp.yaml")
    [message] = messages(info)
    assert message.startswith("configs/models/new.yaml: ")
    assert "the file is empty" in message


def test_reference_to_an_empty_file_names_the_key_path(write, in_tmp):
    write({"configs/models/new.yaml": "", "configs/exp.yaml": "model: models/new.yaml\n"})
    with pytest.raises(ConfigError) as info:
        load_config("configs/exp.yaml")
    [message] = messages(info)
    assert message.startswith("configs/models/new.yaml: model: the file is empty")


def test_reference_to_a_file_holding_a_list_names_the_file_and_key(write, in_tmp):
    write({"configs/models/m.yaml": "- 1\n- 2\n", "configs/exp.yaml": "model: models/m.yaml\n"})
    with pytest.raises(ConfigError) as info:
        load_config("configs/exp.yaml")
    assert messages(info) == [
        "configs/models/m.yaml: model: received [1, 2] (list), expected a mapping with a 'class' key (or a file reference)"
    ]


@pytest.mark.parametrize(("text", "kind"), [("", "empty"), ("- 1\n", "a list"), ("3\n", "a int")])
def test_top_level_file_that_is_not_a_mapping_is_an_error(write, in_tmp, text, kind):
    write({"configs/exp.yaml": text})
    with pytest.raises(ConfigError) as info:
        load_config("configs/exp.yaml")
    assert messages(info) == [f"configs/exp.yaml: the file is {kind}; expected a mapping of config keys"]
