"""``${key.path}`` and ``${env:NAME[,default]}`` interpolation, resolved after overrides."""

from __future__ import annotations

import pytest

from expresso import ConfigError, load_config

ENV = "EXPRESSO_TEST_INTERPOLATION_VALUE"


@pytest.fixture
def project(write, in_tmp):
    write(
        {
            "configs/models/mlp.yaml": "class: my_project.models.MLP\nhidden: 32\nout_features: ${task.num_classes}\n",
            "configs/tasks/digits.yaml": "num_classes: 10\n",
            "configs/tasks/parity.yaml": "num_classes: 2\n",
            "configs/exp.yaml": "task: tasks/digits.yaml\nmodel: models/mlp.yaml\n",
        }
    )
    return "configs/exp.yaml"


def problems(path, overrides=()) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_config(path, list(overrides))
    return [str(problem) for problem in info.value.problems]


def test_key_interpolation_resolves_to_the_value_with_its_type(project):
    out = load_config(project)["model"]["out_features"]
    assert out == 10
    assert type(out) is int


def test_key_interpolation_resolves_after_overrides(project):
    assert load_config(project, ["task.num_classes=3"])["model"]["out_features"] == 3


def test_key_interpolation_follows_a_task_file_swapped_on_the_command_line(project):
    assert load_config(project, ["task=tasks/parity.yaml"])["model"]["out_features"] == 2


def test_interpolation_inside_a_string_is_substituted(write, in_tmp):
    write({"exp.yaml": "task: {num_classes: 10, label: 'classes-${task.num_classes}'}\n"})
    assert load_config("exp.yaml")["task"]["label"] == "classes-10"


def test_interpolation_sees_schema_defaults(write, in_tmp):
    write({"exp.yaml": "trainer: {eval_batch_size: '${trainer.batch_size}'}\n"})
    assert load_config("exp.yaml")["trainer"]["eval_batch_size"] == 64


def test_interpolation_given_as_an_override_is_resolved(project):
    assert load_config(project, ["+task.width=${model.hidden}"])["task"] == {"num_classes": 10, "width": 32}


def test_env_interpolation_reads_the_variable_as_a_string(write, in_tmp, monkeypatch):
    monkeypatch.setenv(ENV, "/data/digits")
    write({"exp.yaml": f"task: {{root: '${{env:{ENV}}}'}}\n"})
    assert load_config("exp.yaml")["task"] == {"root": "/data/digits"}


def test_env_interpolation_uses_the_default_when_the_variable_is_unset(write, in_tmp, monkeypatch):
    monkeypatch.delenv(ENV, raising=False)
    write({"exp.yaml": f"task: {{root: '${{env:{ENV},/tmp/data}}'}}\n"})
    assert load_config("exp.yaml")["task"] == {"root": "/tmp/data"}


def test_env_interpolation_prefers_the_variable_over_the_default(write, in_tmp, monkeypatch):
    monkeypatch.setenv(ENV, "set")
    write({"exp.yaml": f"task: {{root: '${{env:{ENV},unset}}'}}\n"})
    assert load_config("exp.yaml")["task"] == {"root": "set"}


def test_missing_env_variable_is_an_error_naming_file_key_and_variable(write, in_tmp, monkeypatch):
    monkeypatch.delenv(ENV, raising=False)
    write({"exp.yaml": f"task: {{root: '${{env:{ENV}}}'}}\n"})
    [message] = problems("exp.yaml")
    assert message.startswith(f"exp.yaml: task.root: interpolation '${{env:{ENV}}}'")
    assert f"'{ENV}'" in message


def test_missing_env_variable_says_it_is_not_set_and_how_to_give_a_default(write, in_tmp, monkeypatch):
    monkeypatch.delenv(ENV, raising=False)
    write({"exp.yaml": f"task: {{root: '${{env:{ENV}}}'}}\n"})
    assert problems("exp.yaml") == [
        f"exp.yaml: task.root: interpolation '${{env:{ENV}}}' needs environment variable '{ENV}', which is not set"
        f" (give a default: ${{env:{ENV},default}})"
    ]


def test_missing_key_names_the_file_that_wrote_it_and_suggests_the_close_key(write, in_tmp):
    write(
        {
            "configs/models/mlp.yaml": "class: my_project.models.MLP\nout_features: ${task.num_clases}\n",
            "configs/exp.yaml": "task: {num_classes: 10}\nmodel: models/mlp.yaml\n",
        }
    )
    assert problems("configs/exp.yaml") == [
        "configs/models/mlp.yaml: model.out_features: interpolation '${task.num_clases}' refers to"
        " 'task.num_clases', which is not in the config; did you mean 'task.num_classes'?"
    ]


def test_missing_top_level_key_suggests_the_close_root_key(write, in_tmp):
    write({"exp.yaml": "task: {n: '${tsk.n}'}\n"})
    assert problems("exp.yaml") == [
        "exp.yaml: task.n: interpolation '${tsk.n}' refers to 'tsk.n', which is not in the config; did you mean 'task'?"
    ]


def test_self_referencing_interpolation_is_an_error_not_a_hang(write, in_tmp):
    write({"exp.yaml": "task: {n: '${task.n}'}\n"})
    assert problems("exp.yaml") == [
        "exp.yaml: task.n: interpolation '${task.n}' cannot be resolved: Recursive interpolation detected"
    ]


def test_every_broken_interpolation_is_reported_together(write, in_tmp):
    write({"exp.yaml": "task: {a: '${task.nope}', b: 1, c: '${task.alsonope}'}\n"})
    assert [line.split(": ")[1] for line in problems("exp.yaml")] == ["task.a", "task.c"]


def test_escaped_interpolation_yields_the_literal_text(write, in_tmp):
    write({"exp.yaml": "task: {num_classes: 10, pattern: '\\${task.num_classes}'}\n"})
    assert load_config("exp.yaml")["task"]["pattern"] == "${task.num_classes}"


def test_escaped_interpolation_stays_literal_after_printing_and_reloading(write, in_tmp):
    write({"exp.yaml": "task: {num_classes: 10, pattern: 'run-\\${x}', value: '${task.num_classes}'}\n"})
    printed = load_config("exp.yaml").to_yaml()
    assert "pattern: run-\\${x}\n" in printed
    write({"printed.yaml": printed})
    again = load_config("printed.yaml")
    assert again["task"] == {"num_classes": 10, "pattern": "run-${x}", "value": 10}
    assert again.to_yaml().replace("name: printed", "name: exp") == printed


def test_literal_backslash_before_interpolation_text_survives_printing_and_reloading(write, in_tmp):
    # OmegaConf: '\\\\\\${x}' (three backslashes) is a literal backslash followed by a literal '${x}'.
    write({"exp.yaml": "task: {x: 1, path: 'C:\\\\\\${x}'}\n"})
    config = load_config("exp.yaml")
    assert config["task"]["path"] == "C:\\${x}"
    write({"printed.yaml": config.to_yaml()})
    assert load_config("printed.yaml")["task"]["path"] == "C:\\${x}"


def test_mapping_with_both_integer_and_string_digit_keys_is_a_config_error(write, in_tmp):
    write({"exp.yaml": "task: {0: a, '0': b, c: '${task.c2}', c2: 1}\n"})
    with pytest.raises(ConfigError) as info:
        load_config("exp.yaml")
    assert str(info.value).startswith("exp.yaml: task")
