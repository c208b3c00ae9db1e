"""Validation of the composed tree against the schema: keys, types, ranges, choices, defaults."""

from __future__ import annotations

import dataclasses

import pytest

from expresso import ConfigError, load_config
from expresso.config.schema import DataLoaderConfig, TrainerConfig


@pytest.fixture
def check_text(write, in_tmp):
    """Write ``exp.yaml`` with the given text and return the problems loading it reports."""

    def problems(text: str) -> list[str]:
        write({"exp.yaml": text})
        with pytest.raises(ConfigError) as info:
            load_config("exp.yaml")
        return [str(problem) for problem in info.value.problems]

    return problems


@pytest.fixture
def load_text(write, in_tmp):
    def load(text: str):
        write({"exp.yaml": text})
        return load_config("exp.yaml")

    return load


# -- keys --------------------------------------------------------------------


def test_unknown_top_level_key_is_an_error_with_a_suggestion(check_text):
    assert check_text("modle: {class: a.Net}\n") == [
        "exp.yaml: modle: unknown top-level key; did you mean 'model' or 'models'?"
    ]


def test_unknown_top_level_key_without_a_close_match_has_no_suggestion(check_text):
    assert check_text("banana: 1\n") == ["exp.yaml: banana: unknown top-level key"]


def test_unknown_trainer_key_is_an_error_with_a_suggestion(check_text):
    assert check_text("trainer: {max_epoch: 3}\n") == [
        "exp.yaml: trainer.max_epoch: unknown trainer setting; did you mean 'max_epochs'?"
    ]


def test_unknown_dataloader_key_is_an_error_with_a_suggestion(check_text):
    assert check_text("dataloader: {num_worker: 2}\n") == [
        "exp.yaml: dataloader.num_worker: unknown dataloader setting; did you mean 'num_workers'?"
    ]


# -- types, ranges, choices ----------------------------------------------------


@pytest.mark.parametrize(
    ("setting", "text", "message"),
    [
        ("trainer.max_epochs", "ten", "received 'ten' (str), expected an integer"),
        ("trainer.max_epochs", "'10'", "received '10' (str), expected an integer"),
        ("trainer.max_epochs", "true", "received True (bool), expected an integer"),
        ("trainer.max_epochs", "2.5", "received 2.5 (float), expected an integer"),
        ("trainer.max_steps", "many", "received 'many' (str), expected an integer or null"),
        ("trainer.validate_before_fit", "1", "received 1 (int), expected true or false"),
        ("trainer.monitor", "3", "received 3 (int), expected a string"),
        ("dataloader.pin_memory", "sometimes", "received 'sometimes' (str), expected true or false or one of 'auto'"),
        ("dataloader.shuffle", "'yes'", "received 'yes' (str), expected true or false"),
    ],
)
def test_wrong_type_shows_the_received_value_and_the_expected_type(check_text, setting, text, message):
    section, key = setting.split(".")
    assert check_text(f"{section}: {{{key}: {text}}}\n") == [f"exp.yaml: {setting}: {message}"]


@pytest.mark.parametrize(
    ("setting", "text", "message"),
    [
        ("trainer.max_epochs", "0", "received 0, expected a value >= 1"),
        ("trainer.seed", "-1", "received -1, expected a value >= 0"),
        # a seed past numpy's 32-bit range passed --check and failed mid-run ("Overflow when unpacking long long")
        ("trainer.seed", "18446744073709551615", "received 18446744073709551615, expected a value <= 4294967295"),
        ("trainer.seed", "4294967296", "received 4294967296, expected a value <= 4294967295"),
        ("dataloader.prefetch_factor", "0", "received 0, expected a value >= 1"),
        ("dataloader.num_workers", "-2", "received -2, expected a value >= 0"),
    ],
)
def test_out_of_range_value_shows_the_bound(check_text, setting, text, message):
    section, key = setting.split(".")
    assert check_text(f"{section}: {{{key}: {text}}}\n") == [f"exp.yaml: {setting}: {message}"]


@pytest.mark.parametrize("text, value", [("2", 2), ("0.25", 0.25), ("1.0", 1.0), ("null", None)])
def test_limit_batches_takes_a_count_or_a_fraction_and_keeps_which_it_was(load_text, text, value):
    loaded = load_text(f"trainer: {{limit_batches: {text}}}\n")["trainer"]["limit_batches"]
    assert loaded == value and type(loaded) is type(value)  # 1.0 (all batches) stays a float, unlike 1 (one batch)


@pytest.mark.parametrize("text", ["0", "-3", "0.0", "1.5", "-0.5", ".nan"])
def test_limit_batches_below_one_batch_or_a_fraction_above_1_is_refused_with_both_forms_expected(check_text, text):
    [problem] = check_text(f"trainer: {{limit_batches: {text}}}\n")
    assert problem.startswith("exp.yaml: trainer.limit_batches: received ")
    assert problem.endswith(
        ", expected a number of batches (an integer >= 1) or a fraction of them (a float in (0, 1], 1.0: all)"
    )


def test_limit_batches_of_another_type_is_refused(check_text):
    assert check_text("trainer: {limit_batches: many}\n") == [
        "exp.yaml: trainer.limit_batches: received 'many' (str), expected a number or null"
    ]


def test_mode_outside_its_choices_lists_the_choices(check_text):
    assert check_text("trainer: {mode: maximum}\n") == [
        "exp.yaml: trainer.mode: received 'maximum' (str), expected one of 'min', 'max'"
    ]


@pytest.mark.parametrize("device", ["auto", "cpu", "cuda", "cuda:0", "cuda:1", "cuda:12", "mps"])
def test_valid_device_strings_are_accepted(load_text, device):
    assert load_text(f"trainer: {{device: '{device}'}}\n")["trainer"]["device"] == device


@pytest.mark.parametrize("device", ["gpu", "cuda:x", "CUDA", "cuda:", "cuda:-1", "tpu"])
def test_invalid_device_strings_are_refused(check_text, device):
    assert check_text(f"trainer: {{device: '{device}'}}\n") == [
        f"exp.yaml: trainer.device: received '{device}', expected auto, cpu, cuda, cuda:N or mps"
    ]


@pytest.mark.parametrize(
    "text, message",
    [
        ("0", "expected a number of processes >= 1, a list of CUDA device indices, auto or null"),
        ("[]", "expected a non-empty list of distinct CUDA device indices (0, 1, ...)"),
        ("[0, 0]", "expected a non-empty list of distinct CUDA device indices (0, 1, ...)"),
        ("[-1]", "expected a non-empty list of distinct CUDA device indices (0, 1, ...)"),
    ],
)
def test_trainer_devices_that_name_no_process_are_refused(check_text, text, message):
    import yaml

    assert check_text(f"trainer: {{devices: {text}}}\n") == [
        f"exp.yaml: trainer.devices: received {yaml.safe_load(text)!r}, {message}"
    ]


@pytest.mark.parametrize("text", ["2", "[0, 1]", "auto", "null"])
def test_trainer_devices_counts_lists_and_auto_are_accepted(load_text, text):
    import yaml

    assert load_text(f"trainer: {{devices: {text}}}\n")["trainer"]["devices"] == yaml.safe_load(text)


def test_strategy_fsdp_is_refused_with_its_reason(check_text):
    """FSDP2 is not built: accepted, it would train with DDP in silence."""
    assert check_text("trainer: {strategy: fsdp}\n") == [
        "exp.yaml: trainer.strategy: received 'fsdp', expected auto, single or ddp: fsdp (FSDP2) is not supported yet;"
        " ddp trains a model that fits on one device"
    ]


def test_trainer_devices_null_is_accepted(load_text):
    assert load_text("trainer: {devices: null}\n")["trainer"]["devices"] is None


def test_trainer_that_is_not_a_mapping_is_an_error(check_text):
    assert check_text("trainer: 5\n") == ["exp.yaml: trainer: received 5 (int), expected a mapping of trainer settings"]


def test_empty_name_is_an_error(check_text):
    assert check_text("name: ''\n") == ["exp.yaml: name: received '' (str), expected a non-empty string"]


def test_task_that_is_not_a_mapping_is_an_error(check_text):
    assert check_text("task: 10\n") == [
        "exp.yaml: task: received 10 (int), expected a mapping of values (e.g. num_classes: 10)"
    ]


# -- components ----------------------------------------------------------------


def test_component_without_class_is_an_error(check_text):
    assert check_text("optimizer: {lr: 0.1}\n") == [
        "exp.yaml: optimizer: missing 'class': a component names the callable that builds it, e.g. class: torch.optim.AdamW"
    ]


def test_component_that_is_not_a_mapping_is_an_error(check_text):
    assert check_text("loss: torch.nn.MSELoss\n") == [
        "exp.yaml: loss: received 'torch.nn.MSELoss' (str), expected a mapping with a 'class' key (or a file reference)"
    ]


def test_component_may_be_null(load_text):
    assert load_text("scheduler: null\nmodel: {class: a.Net}\n")["scheduler"] is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "model: {class: 5}\n",
            "exp.yaml: model.class: received 5 (int), expected a dotted path such as torch.optim.AdamW",
        ),
        (
            "model: {class: ''}\n",
            "exp.yaml: model.class: received '' (str), expected a dotted path such as torch.optim.AdamW",
        ),
        (
            "model: {class: a.Net, _args_: 3}\n",
            "exp.yaml: model._args_: received 3 (int), expected a list of positional arguments",
        ),
        (
            "model: {class: a.Net, _partial_: 'yes'}\n",
            "exp.yaml: model._partial_: received 'yes' (str), expected true or false",
        ),
        (
            "model: {class: a.Net, head: {class: [a]}}\n",
            "exp.yaml: model.head.class: received ['a'] (list), expected a dotted path such as torch.optim.AdamW",
        ),
    ],
)
def test_reserved_keys_of_a_component_are_checked_including_nested_ones(check_text, text, expected):
    assert check_text(text) == [expected]


def test_metrics_entry_without_class_names_the_entry(check_text):
    assert check_text("metrics: {acc: {average: macro}}\n") == [
        "exp.yaml: metrics.acc: missing 'class': a component names the callable that builds it, e.g. class: torch.optim.AdamW"
    ]


def test_metrics_that_is_a_list_is_an_error(check_text):
    assert check_text("metrics: [{class: a.Acc}]\n") == [
        "exp.yaml: metrics: received [{'class': 'a.Acc'}] (list), expected a mapping of name: component"
    ]


def test_callbacks_that_is_a_mapping_is_an_error(check_text):
    assert check_text("callbacks: {stop: {class: a.Stop}}\n") == [
        "exp.yaml: callbacks: received {'stop': {'class': 'a.Stop'}} (dict), expected a list"
    ]


def test_misspelt_logger_name_is_an_error_with_a_suggestion(check_text):
    # The list of built-in loggers grows as trackers are added; the message lists them all.
    [message] = check_text("loggers: [csv, csvv]\n")
    assert message.startswith("exp.yaml: loggers.1: unknown logger 'csvv'; expected one of csv")
    assert message.endswith(" or a component; did you mean 'csv'?")


def test_logger_may_be_a_component(load_text):
    assert load_text("loggers: [csv, {class: my_project.Logger, every: 5}]\n")["loggers"] == [
        "csv",
        {"class": "my_project.Logger", "every": 5},
    ]


# -- all at once, defaults -----------------------------------------------------


def test_all_problems_are_reported_together(write, in_tmp):
    write(
        {
            "exp.yaml": (
                "modle: {class: a.Net}\n"
                "optimizer: {lr: 0.1}\n"
                "trainer: {max_epoch: 3, max_epochs: ten, seed: -1, mode: maximum, device: gpu}\n"
                "loggers: [cvs]\n"
            )
        }
    )
    with pytest.raises(ConfigError) as info:
        load_config("exp.yaml")
    keys = [problem.key for problem in info.value.problems]
    assert sorted(keys) == sorted(
        [
            "modle",
            "optimizer",
            "trainer.max_epoch",
            "trainer.max_epochs",
            "trainer.seed",
            "trainer.mode",
            "trainer.device",
            "loggers.0",
        ]
    )
    lines = str(info.value).splitlines()
    assert lines[0] == "8 problems in the config:"
    assert len(lines) == 9
    assert all(line.startswith("  exp.yaml: ") for line in lines[1:])


def test_defaults_are_filled_for_absent_settings(load_text):
    config = load_text("trainer: {max_epochs: 3}\n")
    assert config["trainer"]["batch_size"] == 64
    assert config["trainer"] == {**dataclasses.asdict(TrainerConfig()), "max_epochs": 3}
    assert config["dataloader"] == dataclasses.asdict(DataLoaderConfig())


def test_documented_defaults_have_their_documented_values():
    trainer, loader = TrainerConfig(), DataLoaderConfig()
    assert (trainer.max_epochs, trainer.batch_size, trainer.seed, trainer.device, trainer.monitor, trainer.mode) == (
        10,
        64,
        0,
        "auto",
        "val/loss",
        "min",
    )
    assert (loader.shuffle, loader.num_workers, loader.pin_memory, trainer.eval_batch_size) == (
        True,
        "auto",
        "auto",
        None,
    )


def test_eval_batch_size_under_dataloader_is_refused_naming_where_it_moved(check_text):
    assert check_text("dataloader: {eval_batch_size: 32}\n") == [
        "exp.yaml: dataloader.eval_batch_size: received 32 (int), but this setting moved to trainer.eval_batch_size: write it there"
    ]


def test_a_null_eval_batch_size_under_dataloader_from_an_older_run_folder_sets_nothing(load_text):
    """Run folders written before the move hold ``dataloader.eval_batch_size: null`` (defaults filled in): they still load."""
    config = load_text("dataloader: {eval_batch_size: null}\n")
    assert config["trainer"]["eval_batch_size"] is None


def test_eval_batch_size_sits_beside_batch_size_in_trainer(load_text):
    config = load_text("trainer: {batch_size: 16, eval_batch_size: 256}\n")
    assert (config["trainer"]["batch_size"], config["trainer"]["eval_batch_size"]) == (16, 256)
    assert "eval_batch_size" not in config["dataloader"]


def test_absent_sections_get_empty_defaults_and_the_name_is_the_file_stem(load_text):
    config = load_text("model: {class: a.Net}\n")
    assert list(config)[0] == "name"
    assert config["name"] == "exp"
    assert (config["task"], config["metrics"], config["callbacks"], config["loggers"]) == ({}, {}, [], ["csv"])


def test_written_name_wins_over_the_file_stem(load_text):
    assert load_text("name: digits-mlp\n")["name"] == "digits-mlp"


def test_dict_source_is_validated_and_named_experiment(in_tmp):
    config = load_config({"model": {"class": "a.Net"}, "trainer": {"seed": 3}})
    assert (config["name"], config["trainer"]["seed"], config.source) == ("experiment", 3, None)
    with pytest.raises(ConfigError) as info:
        load_config({"trainer": {"seed": "x"}})
    assert str(info.value) == "<dict>: trainer.seed: received 'x' (str), expected an integer"
