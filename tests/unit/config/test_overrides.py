"""Command-line overrides: ``key.sub=value``, ``+key=value``, ``~key``, list indices, file references."""

from __future__ import annotations

import pytest
import yaml

from expresso import ConfigError, load_config

EXPERIMENT = """\
model: {class: my_project.models.Net, hidden: 16, dropout: 0.1}
optimizer: {class: torch.optim.AdamW, lr: 1.0e-3, betas: [0.9, 0.99]}
callbacks:
  - {class: expresso.callbacks.EarlyStopping, monitor: val/loss, patience: 3}
task: {num_classes: 10}
trainer: {max_epochs: 10}
"""


@pytest.fixture
def experiment(write, in_tmp):
    """A project with configs/experiments/exp.yaml and two model files; cwd is the project folder."""
    write(
        {
            "configs/experiments/exp.yaml": EXPERIMENT,
            "configs/models/cnn.yaml": "class: my_project.models.CNN\nchannels: 8\n",
            "configs/models/interp.yaml": "class: my_project.models.CNN\nout: ${task.num_classes}\n",
        }
    )
    return "configs/experiments/exp.yaml"


def load(path, *overrides):
    return load_config(path, list(overrides))


def problems(path, *overrides) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load(path, *overrides)
    return [str(problem) for problem in info.value.problems]


def test_value_in_exponent_notation_is_a_float(experiment):
    lr = load(experiment, "optimizer.lr=3e-4")["optimizer"]["lr"]
    assert lr == 0.0003
    assert type(lr) is float


def test_list_value_is_a_list_of_numbers(experiment):
    assert load(experiment, "optimizer.betas=[0,1]")["optimizer"]["betas"] == [0, 1]


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("7", 7),
        ("true", True),
        ("null", None),
        ("'7'", "7"),
        ("hello world", "hello world"),
        ("", ""),
        ("a=b", "a=b"),
        ("{x: 1, y: [2]}", {"x": 1, "y": [2]}),
    ],
)
def test_value_is_typed_as_yaml(experiment, text, value):
    assert load(experiment, f"+task.value={text}")["task"]["value"] == value


def test_mapping_value_replaces_the_whole_component(experiment):
    config = load(experiment, "optimizer={class: torch.optim.SGD, lr: 0.1}")
    assert config["optimizer"] == {"class": "torch.optim.SGD", "lr": 0.1}


def test_later_override_of_the_same_key_wins(experiment):
    assert load(experiment, "trainer.seed=1", "trainer.seed=2")["trainer"]["seed"] == 2


def test_file_reference_rereads_the_file_and_replaces_the_whole_subtree(experiment):
    config = load(experiment, "model=models/cnn.yaml")
    assert config["model"] == {"class": "my_project.models.CNN", "channels": 8}


def test_file_reference_resolves_against_the_working_directory_first(experiment, write):
    write({"models/cnn.yaml": "class: cwd.CNN\n"})
    assert load(experiment, "model=models/cnn.yaml")["model"] == {"class": "cwd.CNN"}
    assert load(experiment, "model=configs/models/cnn.yaml")["model"] == {
        "class": "my_project.models.CNN",
        "channels": 8,
    }


def test_file_reference_override_whose_file_interpolates_resolves(experiment):
    config = load(experiment, "model=models/interp.yaml", "task.num_classes=3")
    assert config["model"] == {"class": "my_project.models.CNN", "out": 3}


def test_file_reference_override_yields_plain_data(experiment):
    tree = load(experiment, "model=models/cnn.yaml").to_dict()
    assert yaml.safe_load(yaml.safe_dump(tree))["model"] == {"class": "my_project.models.CNN", "channels": 8}


def test_missing_file_reference_is_an_error_with_a_suggestion(experiment):
    assert problems(experiment, "model=models/cnnn.yaml") == [
        "command line: model: file reference 'models/cnnn.yaml' not found (looked in models and configs/models);"
        " did you mean 'configs/models/cnn.yaml'?"
    ]


def test_unknown_key_is_an_error_with_a_suggestion(experiment):
    assert problems(experiment, "optimizer.lrr=0.1") == [
        "command line: optimizer.lrr: no such key in the config (write +optimizer.lrr=... to add it); did you mean 'lr'?"
    ]


def test_unknown_top_level_key_is_an_error_with_a_suggestion_of_what_would_work(experiment):
    """No "+optimzer.lr=..." hint: an added unknown root key fails validation; 'optimizers' is absent, so not suggested."""
    assert problems(experiment, "optimzer.lr=0.1") == [
        "command line: optimzer: no such key in the config; did you mean 'optimizer'?"
    ]
    assert problems(experiment, "init_frm=runs/x") == [
        "command line: init_frm: no such key in the config; did you mean 'init_from'?"
    ]


def test_unknown_trainer_or_dataloader_key_suggests_the_setting_not_plus(experiment):
    """trainer and dataloader are closed: "+trainer.max_epocs=..." would only fail as an unknown setting."""
    assert problems(experiment, "trainer.max_epocs=3", "dataloader.num_worker=2") == [
        "command line: trainer.max_epocs: unknown trainer setting; did you mean 'max_epochs'?",
        "command line: dataloader.num_worker: unknown dataloader setting; did you mean 'num_workers'?",
    ]


def test_an_override_of_a_moved_setting_says_where_it_moved(experiment):
    assert problems(experiment, "dataloader.eval_batch_size=256") == [
        "command line: dataloader.eval_batch_size: this setting moved to trainer.eval_batch_size: write it there"
    ]


def test_key_below_a_missing_schema_section_says_how_to_set_the_section(experiment):
    assert problems(experiment, "scheduler.gamma=0.5") == [
        "command line: scheduler: no such key in the config (write scheduler=... to set the whole section)"
    ]


@pytest.mark.parametrize(
    ("override", "key", "value"),
    [
        ("init_from=runs/exp/123", "init_from", "runs/exp/123"),
        (
            "scheduler={class: torch.optim.lr_scheduler.StepLR, step_size: 5}",
            "scheduler",
            {"class": "torch.optim.lr_scheduler.StepLR", "step_size": 5},
        ),
        (
            "step={class: my_project.steps.step, _partial_: true}",
            "step",
            {"class": "my_project.steps.step", "_partial_": True},
        ),
        (
            "predict={class: my_project.hooks.predict, _partial_: true}",
            "predict",
            {"class": "my_project.hooks.predict", "_partial_": True},
        ),
    ],
)
def test_root_keys_of_the_schema_missing_from_the_config_are_set_without_plus(experiment, override, key, value):
    assert key not in load(experiment)
    assert load(experiment, override)[key] == value


def test_every_bad_override_is_reported_together(experiment):
    found = problems(experiment, "optimizer.lrr=0.1", "trainer.sed=1", "model.hidden")
    assert [line.split(": ")[1] for line in found] == ["optimizer.lrr", "trainer.sed", "model.hidden"]


def test_plus_adds_a_key(experiment):
    assert load(experiment, "+optimizer.weight_decay=0.01")["optimizer"] == {
        "class": "torch.optim.AdamW",
        "lr": 0.001,
        "betas": [0.9, 0.99],
        "weight_decay": 0.01,
    }


def test_plus_creates_missing_parent_mappings(experiment):
    assert load(experiment, "+task.extra.depth=2")["task"] == {"num_classes": 10, "extra": {"depth": 2}}


def test_plus_adds_a_whole_component(experiment):
    assert load(experiment, "+scheduler={class: torch.optim.lr_scheduler.StepLR, step_size: 5}")["scheduler"] == {
        "class": "torch.optim.lr_scheduler.StepLR",
        "step_size": 5,
    }


def test_plus_with_a_list_on_an_existing_list_appends_its_items(experiment):
    callbacks = load(experiment, "+callbacks=[{class: my_project.cb.Print}, {class: my_project.cb.Log}]")["callbacks"]
    assert callbacks == [
        {"class": "expresso.callbacks.EarlyStopping", "monitor": "val/loss", "patience": 3},
        {"class": "my_project.cb.Print"},
        {"class": "my_project.cb.Log"},
    ]


def test_plus_appended_items_are_blamed_on_the_command_line_the_others_on_their_file(experiment):
    config = load(experiment, "+callbacks=[{class: my_project.cb.Print}]")
    assert (config.where(("callbacks", 0, "patience")), config.where(("callbacks", 1, "class"))) == (
        "configs/experiments/exp.yaml",
        "command line",
    )


def test_list_without_plus_replaces_the_list(experiment):
    assert load(experiment, "callbacks=[{class: my_project.cb.Print}]")["callbacks"] == [
        {"class": "my_project.cb.Print"}
    ]


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("+optimizer.lr=0.1", "optimizer.lr exists: write optimizer.lr=... to replace it"),
        ("+trainer.seed=3", "trainer.seed exists: write trainer.seed=... to replace it"),
        (
            "+optimizer={class: torch.optim.SGD}",
            "optimizer exists: write optimizer=... to replace it, or +optimizer.KEY=... to add a key to it",
        ),
        (
            "+callbacks.0={class: my_project.cb.Print}",
            "callbacks.0 exists: write callbacks.0=... to replace it, or +callbacks.0.KEY=... to add a key to it",
        ),
        (
            "+callbacks={class: my_project.cb.Print}",
            "callbacks is a list: write +callbacks=[...] to append items, or callbacks=... to replace it",
        ),
    ],
)
def test_plus_on_an_existing_key_is_refused_saying_how_to_replace_it(experiment, override, message):
    assert problems(experiment, override) == [f"command line: {override[1:].partition('=')[0]}: {message}"]


def test_plus_at_the_end_of_a_list_appends(experiment):
    callbacks = load(experiment, "+callbacks.1={class: my_project.cb.Print}")["callbacks"]
    assert [c["class"] for c in callbacks] == ["expresso.callbacks.EarlyStopping", "my_project.cb.Print"]


def test_tilde_removes_a_key(experiment):
    assert load(experiment, "~optimizer.betas")["optimizer"] == {"class": "torch.optim.AdamW", "lr": 0.001}


def test_tilde_removes_a_list_item(experiment):
    assert load(experiment, "~callbacks.0")["callbacks"] == []


def test_tilde_with_a_value_removes_the_key_only_while_it_holds_that_value(experiment):
    """Hydra's ``~key=value``: never a value accepted and then ignored."""
    assert "lr" not in load(experiment, "~optimizer.lr=0.001")["optimizer"]
    assert problems(experiment, "~optimizer.lr=0.1") == [
        "command line: optimizer.lr: ~optimizer.lr=0.1 deletes the key only while it holds 0.1; it holds 0.001: "
        "write ~optimizer.lr to delete it whatever it holds"
    ]


def test_a_class_level_constant_of_a_settings_section_is_no_setting(experiment):
    assert problems(experiment, "dataloader.moved=3", "dataloader.move=3") == [
        "command line: dataloader.moved: unknown dataloader setting",
        "command line: dataloader.move: unknown dataloader setting",  # before: "did you mean 'moved'?"
    ]


def test_tilde_on_a_framework_section_brings_back_its_default(experiment):
    """``~metrics`` means "no metrics", ``~trainer.max_epochs`` "the default epochs": never a missing section."""
    from expresso.config.schema import TrainerConfig

    config = load(experiment, "~callbacks", "~task", "~trainer.max_epochs")
    assert config["callbacks"] == [] and config["task"] == {}
    assert config["trainer"]["max_epochs"] == TrainerConfig().max_epochs


def test_tilde_on_a_missing_key_is_an_error(experiment):
    assert problems(experiment, "~optimizer.momentum") == [
        "command line: optimizer.momentum: no such key in the config"
    ]


def test_list_item_is_addressed_by_index(experiment):
    assert load(experiment, "callbacks.0.patience=5")["callbacks"] == [
        {"class": "expresso.callbacks.EarlyStopping", "monitor": "val/loss", "patience": 5}
    ]


def test_list_index_out_of_range_is_an_error(experiment):
    assert problems(experiment, "callbacks.3.patience=5") == [
        "command line: callbacks.3: no list item 3; the list has 1 item(s) (indices 0-0)"
    ]


def test_integer_key_of_a_mapping_is_addressed_by_its_digits(experiment, write):
    write({"configs/sched.yaml": "scheduler: {class: a.Piecewise, values: {0: 0.1, 40: 0.01}}\n"})
    assert load("configs/sched.yaml", "scheduler.values.40=0.5")["scheduler"]["values"] == {0: 0.1, 40: 0.5}


def test_string_key_made_of_digits_can_be_overridden(experiment, write):
    write({"configs/sizes.json": '{"task": {"sizes": {"0": 1, "10": 2}}}'})
    assert load("configs/sizes.json", "task.sizes.0=5")["task"]["sizes"] == {"0": 5, "10": 2}


def test_setting_below_a_scalar_is_an_error(experiment):
    assert problems(experiment, "trainer.max_epochs.value=1") == [
        "command line: trainer.max_epochs: cannot set 'trainer.max_epochs.value': trainer.max_epochs holds a int,"
        " not a mapping"
    ]


def test_override_without_equals_sign_is_an_error(experiment):
    assert problems(experiment, "optimizer.lr") == [
        "command line: optimizer.lr: override 'optimizer.lr' has no '='; write key.sub=value, +key=value or ~key"
    ]


@pytest.mark.parametrize("text", ["=3", "optimizer..lr=3", ".lr=1", "+=1"])
def test_override_with_an_empty_key_part_is_an_error(experiment, text):
    [message] = problems(experiment, text)
    assert message.endswith(f"override {text!r} names no valid key path")
    assert message.startswith("command line: ")


def test_unparsable_value_is_an_error_naming_the_key(experiment):
    assert problems(experiment, "optimizer.betas=[0,1") == [
        "command line: optimizer.betas: cannot read the value '[0,1' as YAML: expected ',' or ']', but got '<stream end>'"
    ]


@pytest.mark.parametrize(
    ("override", "key", "value"),
    [
        ("trainer.max_steps=100", "max_steps", 100),
        ("trainer.batch_size=32", "batch_size", 32),
        ("trainer.mode=max", "mode", "max"),
        ("trainer.device=cuda:1", "device", "cuda:1"),
    ],
)
def test_schema_keys_not_written_in_the_file_are_overridden_without_plus(experiment, override, key, value):
    assert load(experiment, override)["trainer"][key] == value


def test_dataloader_defaults_are_overridden_without_plus(experiment):
    assert load(experiment, "dataloader.num_workers=2")["dataloader"]["num_workers"] == 2


def test_value_set_on_the_command_line_is_validated_and_blamed_on_it(experiment):
    assert problems(experiment, "trainer.max_epochs=0") == [
        "command line: trainer.max_epochs: received 0, expected a value >= 1"
    ]


def test_added_unknown_top_level_key_is_refused_by_validation(experiment):
    assert problems(experiment, "+optimiser={class: a.B}") == [
        "command line: optimiser: unknown top-level key; did you mean 'optimizer' or 'optimizers'?"
    ]


def test_overrides_change_nothing_in_the_files(experiment):
    before = open(experiment).read()
    load(experiment, "optimizer.lr=0.5", "~callbacks.0", "model=models/cnn.yaml")
    assert open(experiment).read() == before
    assert load(experiment)["optimizer"]["lr"] == 0.001
