"""Building live objects from config nodes."""

from __future__ import annotations

import functools

import pytest

from expresso import instantiate, load_config

PARTS = """\
class Net:
    def __init__(self, in_features, num_classes=2, hidden=8):
        self.in_features, self.num_classes, self.hidden = in_features, num_classes, hidden


class Wrapper:
    built = []

    def __init__(self, backbone, scale=1.0):
        Wrapper.built.append(type(backbone).__name__)
        self.backbone, self.scale = backbone, scale


def pair(first, second, third=0):
    return (first, second, third)


def explode(reason):
    raise ValueError(reason)
"""


@pytest.fixture
def project(write, in_tmp, monkeypatch):
    """A user package my_project/ in the working directory, importable as a script run there would see it."""
    write({"my_project/__init__.py": "", "my_project/parts.py": PARTS})
    monkeypatch.syspath_prepend(str(in_tmp))
    return in_tmp


def test_class_is_called_with_the_other_keys_as_keywords(project):
    net = instantiate({"class": "my_project.parts.Net", "in_features": 4, "hidden": 16})
    assert (type(net).__name__, net.in_features, net.num_classes, net.hidden) == ("Net", 4, 2, 16)


def test_children_are_built_before_their_parent(project):
    wrapper = instantiate(
        {
            "class": "my_project.parts.Wrapper",
            "backbone": {"class": "my_project.parts.Net", "in_features": 3},
            "scale": 2.0,
        }
    )
    assert type(wrapper.backbone).__name__ == "Net"
    assert wrapper.backbone.in_features == 3
    assert wrapper.scale == 2.0


def test_positional_arguments_come_from_args_and_are_built_too(project):
    import torch

    seq = instantiate(
        {
            "class": "torch.nn.Sequential",
            "_args_": [{"class": "torch.nn.Linear", "in_features": 2, "out_features": 3}, {"class": "torch.nn.ReLU"}],
        }
    )
    assert isinstance(seq, torch.nn.Sequential)
    assert [type(m).__name__ for m in seq] == ["Linear", "ReLU"]
    assert seq[0].out_features == 3


def test_args_and_keywords_combine(project):
    assert instantiate({"class": "my_project.parts.pair", "_args_": [1], "second": 2}) == (1, 2, 0)


def test_partial_returns_a_functools_partial_with_the_configured_arguments(project):
    built = instantiate({"class": "my_project.parts.pair", "_partial_": True, "third": 3})
    assert isinstance(built, functools.partial)
    assert built.keywords == {"third": 3}
    assert built(1, 2) == (1, 2, 3)


def test_extra_positional_arguments_to_instantiate_come_first(project):
    assert instantiate({"class": "my_project.parts.pair", "_args_": [2], "third": 3}, 1) == (1, 2, 3)


def test_optimizer_built_with_model_parameters_has_the_configured_lr(write, in_tmp):
    write(
        {
            "configs/exp.yaml": (
                "model: {class: torch.nn.Linear, in_features: 3, out_features: 2}\n"
                "optimizer: {class: torch.optim.AdamW, lr: 3.0e-4, weight_decay: 0.05}\n"
            )
        }
    )
    config = load_config("configs/exp.yaml", check=True)
    model = instantiate(config["model"])
    optimizer = instantiate(config["optimizer"], model.parameters())
    assert type(optimizer).__name__ == "AdamW"
    assert optimizer.param_groups[0]["lr"] == 0.0003 == config["optimizer"]["lr"]
    assert optimizer.param_groups[0]["weight_decay"] == 0.05
    assert optimizer.param_groups[0]["params"][0] is model.weight


def test_keyword_arguments_to_instantiate_reach_the_top_level_callable(project):
    assert instantiate({"class": "my_project.parts.pair", "first": 1}, second=5) == (1, 5, 0)


def test_keyword_given_both_in_the_config_and_by_the_caller_is_an_error(project):
    with pytest.raises(TypeError) as info:
        instantiate({"class": "my_project.parts.pair", "first": 1, "second": 2}, second=5)
    assert str(info.value) == "my_project.parts.pair: ['second'] given both in the config and by the caller"


def test_extra_arguments_need_a_node_with_class(project):
    with pytest.raises(TypeError) as info:
        instantiate({"lr": 0.1}, 1)
    assert str(info.value) == "extra arguments to instantiate() need a node with a 'class' key"


def test_containers_without_class_have_their_items_built(project):
    built = instantiate({"a": [{"class": "my_project.parts.pair", "first": 1, "second": 2}, 3], "b": {"c": None}})
    assert built == {"a": [(1, 2, 0), 3], "b": {"c": None}}


@pytest.mark.parametrize("value", [3, "text", None, 0.5, [1, "a"]])
def test_plain_values_are_returned_as_they_are(value):
    assert instantiate(value) == value


def test_instantiate_does_not_change_the_node(project):
    node = {"class": "my_project.parts.Wrapper", "backbone": {"class": "my_project.parts.Net", "in_features": 3}}
    instantiate(node)
    assert node == {
        "class": "my_project.parts.Wrapper",
        "backbone": {"class": "my_project.parts.Net", "in_features": 3},
    }


def test_misspelt_class_is_an_import_error_with_a_suggestion(project):
    with pytest.raises(ImportError) as info:
        instantiate({"class": "my_project.parts.Nett", "in_features": 3})
    assert str(info.value) == (
        "cannot import 'my_project.parts.Nett': 'my_project.parts' has no attribute 'Nett'; did you mean my_project.parts.Net?"
    )


def test_error_raised_while_building_says_which_class_from_the_config(project):
    with pytest.raises(ValueError) as info:
        instantiate({"class": "my_project.parts.explode", "reason": "no data"})
    assert str(info.value) == "no data"
    assert info.value.__notes__ == ["while building my_project.parts.explode from the config"]


def test_both_spellings_of_a_user_class_build_the_same_class(write, in_tmp):
    write(
        {
            "my_project/__init__.py": "",
            "my_project/parts.py": PARTS,
            "configs/exp.yaml": (
                "model: {class: 'my_project/parts.py:Net', in_features: 2}\n"
                "dataset: {class: my_project.parts.Net, in_features: 5}\n"
            ),
        }
    )
    config = load_config("configs/exp.yaml", check=True)
    by_file, by_module = instantiate(config["model"]), instantiate(config["dataset"])
    assert type(by_file) is type(by_module)
    assert type(by_file).__module__ == "my_project.parts"
    assert (by_file.in_features, by_module.in_features) == (2, 5)


def test_user_class_builds_after_load_config_from_another_working_directory(write, in_tmp, monkeypatch):
    write(
        {
            "my_project/__init__.py": "",
            "my_project/parts.py": PARTS,
            "configs/exp.yaml": "model: {class: 'my_project/parts.py:Net', in_features: 2}\n",
        }
    )
    (in_tmp / "notebooks").mkdir()
    monkeypatch.chdir(in_tmp / "notebooks")
    config = load_config(in_tmp / "configs/exp.yaml")
    assert instantiate(config["model"]).in_features == 2
