"""Reading one config file (YAML, JSON, Python) into plain data, and writing YAML back."""

from __future__ import annotations

from pathlib import Path

import pytest

from expresso.config.files import FileProblem, dump_yaml, parse_yaml, read_file


def read(path: Path):
    return read_file(path, path.name)


def problems_of(path: Path) -> list[str]:
    with pytest.raises(FileProblem) as info:
        read(path)
    return [str(problem) for problem in info.value.problems]


# -- YAML ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "value"),
    [("1e-3", 0.001), ("1E5", 100000.0), ("-2.5e+2", -250.0), ("1.0e-3", 0.001), (".5", 0.5), ("3.", 3.0)],
)
def test_yaml_reads_exponent_notation_without_a_dot_as_float(text, value):
    data = parse_yaml(f"lr: {text}")
    assert data == {"lr": value}
    assert type(data["lr"]) is float


def test_yaml_keeps_integers_and_quoted_numbers_as_written():
    assert parse_yaml("a: 10\nb: '1e-3'\nc: -3") == {"a": 10, "b": "1e-3", "c": -3}
    assert type(parse_yaml("a: 10")["a"]) is int


def test_yaml_file_1e_minus_3_reads_as_float_0_001(tmp_path):
    path = tmp_path / "opt.yaml"
    path.write_text("class: torch.optim.AdamW\nlr: 1e-3\n")
    assert read(path) == {"class": "torch.optim.AdamW", "lr": 0.001}


def test_duplicate_yaml_key_is_an_error_naming_the_line_and_key(tmp_path):
    path = tmp_path / "dup.yaml"
    path.write_text("a: 1\nb: 2\na: 3\n")
    assert problems_of(path) == ["dup.yaml: invalid YAML at line 3, column 1: duplicate key 'a'"]


def test_duplicate_yaml_key_in_a_nested_mapping_names_its_line_and_column(tmp_path):
    path = tmp_path / "dup.yaml"
    path.write_text("model:\n  class: a.B\n  hidden: 3\n  class: a.C\n")
    assert problems_of(path) == ["dup.yaml: invalid YAML at line 4, column 3: duplicate key 'class'"]


def test_yaml_merge_key_brings_in_the_anchored_mapping(tmp_path):
    path = tmp_path / "merge.yaml"
    path.write_text("base: &base {lr: 0.1, momentum: 0.9}\noptimizer:\n  <<: *base\n  nesterov: true\n")
    assert read(path)["optimizer"] == {"lr": 0.1, "momentum": 0.9, "nesterov": True}


def test_yaml_key_written_beside_a_merge_key_overrides_the_merged_value(tmp_path):
    path = tmp_path / "merge.yaml"
    path.write_text("base: &base {lr: 0.1, momentum: 0.9}\noptimizer:\n  <<: *base\n  lr: 0.2\n")
    assert read(path)["optimizer"] == {"lr": 0.2, "momentum": 0.9}


def test_bad_yaml_names_line_and_column(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("a: 1\n  b: 2\n")
    assert problems_of(path) == ["bad.yaml: invalid YAML at line 2, column 4: mapping values are not allowed here"]


def test_unclosed_yaml_flow_list_names_the_line_where_parsing_failed(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("a: 1\nb: [1, 2\nc: 3\n")
    [problem] = problems_of(path)
    assert problem.startswith("bad.yaml: invalid YAML at line 3, column 2: ")
    assert "expected ',' or ']'" in problem


def test_yaml_dates_stay_strings(tmp_path):
    path = tmp_path / "dates.yaml"
    path.write_text("day: 2024-01-31\nat: 2024-01-31 10:00:00\n")
    assert read(path) == {"day": "2024-01-31", "at": "2024-01-31 10:00:00"}


def test_yaml_boolean_key_is_refused_with_its_key_path(tmp_path):
    path = tmp_path / "keys.yaml"
    path.write_text("task:\n  yes: 1\n")
    assert problems_of(path) == ["keys.yaml: task: keys must be strings or integers, received True (bool)"]


def test_yaml_integer_keys_are_kept(tmp_path):
    path = tmp_path / "sched.yaml"
    path.write_text("values: {0: 1.0e-3, 40: 1.0e-2}\n")
    assert read(path) == {"values": {0: 0.001, 40: 0.01}}


# -- JSON ------------------------------------------------------------------


def test_json_file_reads_into_the_same_plain_tree_as_yaml(tmp_path):
    (tmp_path / "a.json").write_text('{"lr": 1e-3, "betas": [0.9, 0.99], "name": null, "on": true}')
    (tmp_path / "a.yaml").write_text("lr: 1e-3\nbetas: [0.9, 0.99]\nname: null\n'on': true\n")
    assert (
        read(tmp_path / "a.json")
        == read(tmp_path / "a.yaml")
        == {
            "lr": 0.001,
            "betas": [0.9, 0.99],
            "name": None,
            "on": True,
        }
    )


def test_duplicate_json_key_is_an_error_naming_the_key(tmp_path):
    path = tmp_path / "dup.json"
    path.write_text('{"a": 1,\n "b": 2,\n "a": 3}')
    [problem] = problems_of(path)
    assert problem.startswith("dup.json: invalid JSON")
    assert "duplicate key 'a'" in problem


def test_duplicate_json_key_names_the_line(tmp_path):
    path = tmp_path / "dup.json"
    path.write_text('{"a": 1,\n "b": 2,\n "a": 3}')
    assert problems_of(path) == ["dup.json: invalid JSON at line 3: duplicate key 'a'"]


def test_duplicate_json_key_in_a_nested_object_names_its_line(tmp_path):
    path = tmp_path / "dup.json"
    path.write_text('{"model": {"class": "a.B",\n  "hidden": 3,\n  "hidden": 4},\n "hidden": 1}')
    assert problems_of(path) == ["dup.json: invalid JSON at line 3: duplicate key 'hidden'"]


def test_bad_json_names_line_and_column(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text('{"a": 1,\n "b": }')
    assert problems_of(path) == ["bad.json: invalid JSON at line 2, column 7: Expecting value"]


# -- Python ----------------------------------------------------------------


def test_python_config_defines_a_plain_dict_named_config(tmp_path):
    path = tmp_path / "exp.py"
    path.write_text(
        "lr = 10 ** -3\nconfig = {'optimizer': {'class': 'torch.optim.SGD', 'lr': lr, 'betas': (0.9, 0.99)}}\n"
    )
    assert read(path) == {"optimizer": {"class": "torch.optim.SGD", "lr": 0.001, "betas": [0.9, 0.99]}}


def test_python_config_without_config_is_an_error(tmp_path):
    path = tmp_path / "exp.py"
    path.write_text("settings = {'model': {'class': 'a.B'}}\n")
    assert problems_of(path) == [
        "exp.py: a Python config must define a dict named `config` (or, in an experiment folder, `hparams`); neither is defined"
    ]


def test_python_config_that_is_not_a_dict_names_the_received_value(tmp_path):
    path = tmp_path / "exp.py"
    path.write_text("config = [1, 2]\n")
    assert problems_of(path) == ["exp.py: config: received [1, 2] (list), expected a dict"]


def test_python_config_with_non_plain_values_names_every_key_path(tmp_path):
    path = tmp_path / "exp.py"
    path.write_text("config = {'model': {'class': 'a.B', 'layers': [1, object()]}, 'tags': {'x', 'y'}}\n")
    problems = problems_of(path)
    assert len(problems) == 2
    assert problems[0].startswith("exp.py: model.layers.1: received <object object at ")
    assert problems[0].endswith(
        "(object); a config holds only str, int, float, bool, None, lists and mappings"
        " (write a class as a dotted path string)"
    )
    assert problems[1].startswith("exp.py: tags: received {")
    assert "(set); a config holds only" in problems[1]


def test_python_config_holding_a_class_object_asks_for_a_dotted_path(tmp_path):
    path = tmp_path / "exp.py"
    path.write_text("import collections\nconfig = {'model': {'class': collections.OrderedDict}}\n")
    [problem] = problems_of(path)
    assert problem.startswith("exp.py: model.class: received <class 'collections.OrderedDict'> (type)")
    assert problem.endswith("(write a class as a dotted path string)")


def test_python_config_that_raises_is_reported_not_crashed(tmp_path):
    path = tmp_path / "exp.py"
    path.write_text("config = {}\nraise RuntimeError('boom')\n")
    assert problems_of(path) == ["exp.py: running the file raised RuntimeError: boom"]


def test_python_config_with_a_syntax_error_names_the_line(tmp_path):
    path = tmp_path / "exp.py"
    path.write_text("x = 1\nconfig = {'a': \n")
    [problem] = problems_of(path)
    assert problem.startswith("exp.py: invalid Python at line 2: ")


# -- any file --------------------------------------------------------------


def test_unsupported_file_extension_lists_the_supported_ones(tmp_path):
    path = tmp_path / "exp.toml"
    path.write_text("a = 1\n")
    assert problems_of(path) == [
        "exp.toml: unsupported config file type '.toml'; expected one of .yaml, .yml, .json, .py"
    ]


def test_file_that_is_not_utf8_is_an_error(tmp_path):
    path = tmp_path / "exp.yaml"
    path.write_bytes(b"name: caf\xe9\n")
    [problem] = problems_of(path)
    assert problem.startswith("exp.yaml: not UTF-8 text (")
    assert problem.endswith("at byte 9)")


# -- writing ---------------------------------------------------------------


def test_dumped_string_1e3_is_quoted_so_it_reads_back_as_a_string():
    text = dump_yaml({"a": "1e3"})
    assert text == "a: '1e3'\n"
    assert parse_yaml(text) == {"a": "1e3"}


@pytest.mark.parametrize(
    "text",
    [
        "1e3",
        "1E-5",
        "+1e3",
        "-.5",
        "3.",
        "yes",
        "no",
        "on",
        "Off",
        "null",
        "~",
        "",
        "0x10",
        "0o17",
        "1:30",
        "1_000",
        "2024-01-01",
        ".inf",
        "true",
        "${x}",
        "a: b",
        "- item",
        "#comment",
        "12",
    ],
)
def test_dumped_strings_that_look_like_other_types_read_back_unchanged(text):
    assert parse_yaml(dump_yaml({"value": text})) == {"value": text}


@pytest.mark.parametrize("number", [0.001, 1e20, -2.5e-8, 3.0, float("inf"), 7, -0])
def test_dumped_numbers_read_back_with_their_type_and_value(number):
    back = parse_yaml(dump_yaml({"value": number}))["value"]
    assert back == number
    assert type(back) is type(number)


def test_dump_keeps_key_order_and_block_style():
    assert dump_yaml({"b": 1, "a": {"y": [1, 2], "x": None}}) == "b: 1\na:\n  y:\n  - 1\n  - 2\n  x: null\n"


def test_base_60_looking_values_stay_strings_and_round_trip():
    """YAML 1.1 reads 1:30 as the integer 90; a config means the text."""
    from expresso.config.files import dump_yaml, parse_yaml

    assert parse_yaml("time: 1:30\nratio: 2:1:10.5\n") == {"time": "1:30", "ratio": "2:1:10.5"}
    assert parse_yaml(dump_yaml({"time": "1:30"})) == {"time": "1:30"}
    assert parse_yaml("n: 130\n") == {"n": 130}
