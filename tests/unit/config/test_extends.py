"""Composing one tree from files: ``extends`` (bases merged in order) and cycles of extends or references."""

from __future__ import annotations

import pytest
from test_compose import messages

from expresso import ConfigError, load_config

# -- extends -----------------------------------------------------------------


def test_extends_merges_the_file_on_top_of_its_base(write):
    root = write(
        {
            "configs/base.yaml": (
                "name: base\n"
                "trainer: {max_epochs: 5, seed: 1}\n"
                "optimizer: {class: a.Adam, lr: 0.1, betas: [0.9, 0.99]}\n"
            ),
            "configs/exp.yaml": "extends: base.yaml\ntrainer: {seed: 2}\noptimizer: {lr: 0.2}\n",
        }
    )
    config = load_config(root / "configs/exp.yaml")
    assert config["name"] == "base"
    assert (config["trainer"]["max_epochs"], config["trainer"]["seed"]) == (5, 2)
    assert config["optimizer"] == {"class": "a.Adam", "lr": 0.2, "betas": [0.9, 0.99]}
    assert "extends" not in config


def test_extends_list_applies_bases_in_order_and_the_file_last(write):
    root = write(
        {
            "configs/a.yaml": "trainer: {seed: 1, max_epochs: 2, batch_size: 8}\n",
            "configs/b.yaml": "trainer: {seed: 3, max_epochs: 4}\n",
            "configs/exp.yaml": "extends: [a.yaml, b.yaml]\ntrainer: {seed: 5}\n",
        }
    )
    trainer = load_config(root / "configs/exp.yaml")["trainer"]
    assert (trainer["seed"], trainer["max_epochs"], trainer["batch_size"]) == (5, 4, 8)


def test_extends_replaces_lists_instead_of_concatenating(write):
    root = write(
        {
            "configs/base.yaml": "callbacks: [{class: a.One}, {class: a.Two}]\noptimizer: {class: a.Opt, betas: [0.9, 0.999]}\n",
            "configs/exp.yaml": "extends: base.yaml\ncallbacks: [{class: a.Three}]\noptimizer: {betas: [0.5]}\n",
        }
    )
    config = load_config(root / "configs/exp.yaml")
    assert config["callbacks"] == [{"class": "a.Three"}]
    assert config["optimizer"] == {"class": "a.Opt", "betas": [0.5]}


def test_file_reference_replaces_the_bases_subtree_instead_of_merging(write):
    root = write(
        {
            "configs/base.yaml": "model: {class: a.Net, hidden: 5, dropout: 0.1}\n",
            "configs/models/net.yaml": "class: a.Net\ndepth: 2\n",
            "configs/exp.yaml": "extends: base.yaml\nmodel: models/net.yaml\n",
        }
    )
    assert load_config(root / "configs/exp.yaml")["model"] == {"class": "a.Net", "depth": 2}


def test_mapping_merges_onto_a_component_the_base_read_from_a_file(write):
    root = write(
        {
            "configs/base.yaml": "model: models/net.yaml\n",
            "configs/models/net.yaml": "class: a.Net\ndepth: 2\nhidden: 5\n",
            "configs/exp.yaml": "extends: base.yaml\nmodel: {hidden: 9}\n",
        }
    )
    assert load_config(root / "configs/exp.yaml")["model"] == {"class": "a.Net", "depth": 2, "hidden": 9}


def test_mapping_with_a_different_class_replaces_the_bases(write):
    root = write(
        {
            "configs/base.yaml": "optimizer: {class: torch.optim.AdamW, lr: 0.001, betas: [0.9, 0.99]}\n",
            "configs/exp.yaml": "extends: base.yaml\noptimizer: {class: torch.optim.SGD, lr: 0.1}\n",
        }
    )
    assert load_config(root / "configs/exp.yaml")["optimizer"] == {"class": "torch.optim.SGD", "lr": 0.1}


def test_references_in_a_base_resolve_against_the_bases_folder(write):
    root = write(
        {
            "configs/experiments/base.yaml": "model: ../models/net.yaml\n",
            "configs/experiments/sweep/exp.yaml": "extends: ../base.yaml\n",
            "configs/models/net.yaml": "class: a.Net\n",
        }
    )
    assert load_config(root / "configs/experiments/sweep/exp.yaml")["model"] == {"class": "a.Net"}


def test_referenced_file_may_extend_another(write):
    root = write(
        {
            "configs/models/small.yaml": "class: a.Net\nhidden: 8\ndepth: 2\n",
            "configs/models/big.yaml": "extends: small.yaml\nhidden: 512\n",
            "configs/exp.yaml": "model: models/big.yaml\n",
        }
    )
    assert load_config(root / "configs/exp.yaml")["model"] == {"class": "a.Net", "hidden": 512, "depth": 2}


def test_extends_that_is_not_a_file_path_is_an_error(write, in_tmp):
    write({"configs/exp.yaml": "extends: 3\n"})
    with pytest.raises(ConfigError) as info:
        load_config("configs/exp.yaml")
    assert messages(info) == ["configs/exp.yaml: extends: received 3, expected a config file path or a list of them"]


def test_problem_in_a_base_names_the_base_file(write, in_tmp):
    write(
        {
            "configs/base.yaml": "trainer: {max_epochs: 0}\n",
            "configs/models/net.yaml": "hidden: 3\n",
            "configs/exp.yaml": "extends: base.yaml\nmodel: models/net.yaml\ntrainer: {seed: 1}\n",
        }
    )
    with pytest.raises(ConfigError) as info:
        load_config("configs/exp.yaml")
    assert sorted(messages(info)) == [
        "configs/base.yaml: trainer.max_epochs: received 0, expected a value >= 1",
        "configs/models/net.yaml: model: missing 'class': a component names the callable that builds it,"
        " e.g. class: torch.optim.AdamW",
    ]


# -- cycles ------------------------------------------------------------------


def test_extends_cycle_names_every_file_in_the_cycle(write, in_tmp):
    write({"configs/a.yaml": "extends: b.yaml\n", "configs/b.yaml": "extends: [a.yaml]\n"})
    with pytest.raises(ConfigError) as info:
        load_config("configs/a.yaml")
    assert messages(info) == ["configs/b.yaml: reference cycle: configs/a.yaml -> configs/b.yaml -> configs/a.yaml"]


def test_reference_cycle_names_every_file_in_the_cycle(write, in_tmp):
    write({"configs/exp.yaml": "metrics: metrics/all.yaml\n", "configs/metrics/all.yaml": "acc: ../exp.yaml\n"})
    with pytest.raises(ConfigError) as info:
        load_config("configs/exp.yaml")
    assert messages(info) == [
        "configs/metrics/all.yaml: metrics.acc: reference cycle: configs/exp.yaml -> configs/metrics/all.yaml -> configs/exp.yaml"
    ]


def test_file_referencing_itself_is_a_cycle(write, in_tmp):
    write({"configs/exp.yaml": "model: exp.yaml\n"})
    with pytest.raises(ConfigError) as info:
        load_config("configs/exp.yaml")
    assert messages(info) == ["configs/exp.yaml: model: reference cycle: configs/exp.yaml -> configs/exp.yaml"]


def test_same_file_referenced_twice_is_not_a_cycle(write):
    root = write(
        {
            "configs/metrics/acc.yaml": "class: a.Acc\n",
            "configs/exp.yaml": "metrics: {train_acc: metrics/acc.yaml, val_acc: metrics/acc.yaml}\n",
        }
    )
    assert load_config(root / "configs/exp.yaml")["metrics"] == {
        "train_acc": {"class": "a.Acc"},
        "val_acc": {"class": "a.Acc"},
    }
