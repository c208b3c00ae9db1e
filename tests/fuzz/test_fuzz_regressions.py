"""The crashes the fuzz tests found, shrunk: each is now a ConfigError naming the file (or the command line) and key.

Before the fixes each of these raised something else out of ``load_config`` or
``expresso config`` (the exception is in the test's id), or took tens of
seconds (the alias bomb).
"""

from __future__ import annotations

import time

import pytest
from fuzz_support import EXAMPLE_CONFIGS, isolated, quiet_main

from expresso import load_config
from expresso.assembly import check
from expresso.config import ConfigError

NINE = ",".join(["*{0}"] * 9)
ALIAS_BOMB = (
    "a: &a [1, 2, 3, 4, 5, 6, 7, 8, 9]\n"
    + "".join(f"{name}: &{name} [{NINE.format(previous)}]\n" for previous, name in zip("abcde", "bcdef"))
    + f"task: {{x: [{NINE.format('f')}]}}\n"
)

FILES = [
    # (id: the old exception, file name, text, what the message says)
    ("IndexError-class-at-root", "c.yaml", "class: torch.optim.AdamW\n", "class: unknown top-level key"),
    (
        "GrammarParseError-open-interpolation",
        "c.yaml",
        "task: {a: 'cost ${'}\n",
        "task.a: interpolation 'cost ${' is not valid",
    ),
    (
        "GrammarParseError-empty-interpolation",
        "c.yaml",
        "task: {a: '${}'}\n",
        "task.a: interpolation '${}' is not valid",
    ),
    (
        "RecursionError-resolver-returns-its-parent",
        "c.yaml",
        "task: {a: '${oc.deprecated:task}'}\n",
        "task.a: interpolation",
    ),
    ("RecursionError-deep-yaml", "c.yaml", "task: " + "[" * 2000 + "]" * 2000, "nested too deeply"),
    ("RecursionError-deep-json", "c.json", '{"task": ' + "[" * 3000 + "]" * 3000 + "}", "nested too deeply"),
    (
        "RecursionError-100-levels-and-an-interpolation",
        "c.yaml",
        "task: {t: " + "[" * 100 + "'${name}'" + "]" * 100 + "}",
        "nested more than 32 levels",
    ),
    ("RecursionError-alias-inside-its-anchor", "c.yaml", "task: &x [*x]\n", "task.0: contains itself"),
    ("slow-alias-bomb", "c.yaml", ALIAS_BOMB, "more than 100,000 values"),
    ("ValueError-5000-digit-int-yaml", "c.yaml", "task: {a: " + "9" * 5000 + "}\n", "invalid YAML"),
    ("ValueError-5000-digit-int-json", "c.json", '{"task": {"a": ' + "9" * 5000 + "}}", "invalid JSON"),
    (
        "ValueError-on-printing-a-huge-hex-int",
        "c.yaml",
        "task: {a: 0x" + "f" * 5000 + "}\n",
        "task.a: received an integer of about",
    ),
    ("ValueError-int-tag", "c.yaml", "task: {a: !!int x}\n", "invalid YAML: a value cannot be read"),
    ("KeyError-bool-tag", "c.yaml", "task: {a: !!bool maybe}\n", "invalid YAML: a value cannot be read"),
    ("AttributeError-timestamp-tag", "c.yaml", "task: {a: !!timestamp x}\n", "invalid YAML: a value cannot be read"),
    (
        "UnicodeEncodeError-lone-surrogate-on-printing",
        "c.json",
        '{"task": {"a": "\\ud800"}}',
        "task.a: received '\\ud800' (str), which holds half",
    ),
    ("OSError-file-reference-name-too-long", "c.yaml", "model: " + "9" * 300 + ".yaml\n", "model: file reference '999"),
    (
        "OSError-class-file-name-too-long",
        "c.yaml",
        "model: {class: " + "x" * 300 + ".py:Net}\n",
        "model.class: cannot import 'xxx",
    ),
    (
        "TypeError-graph-node-name-a-list",
        "c.yaml",
        "models: {m: {class: torch.nn.Identity}}\ngraph: [{name: [1], model: m}]\n",
        "graph.0.name: received [1] (list), expected a string",
    ),
    (
        "TypeError-int-and-str-model-names",
        "c.yaml",
        "models: {1: {class: expresso.models.MLP}, a: {class: expresso.models.MLP}}\ngraph: [{model: b}]\n",
        "graph.0.model: unknown model 'b'; expected one of [1, 'a']",
    ),
    (
        "AttributeError-task-not-a-mapping",
        "c.yaml",
        "task: 1.5\nmodel: {class: expresso.models.MLP}\n",
        "task: received 1.5 (float)",
    ),
]


@pytest.mark.parametrize("name, text, message", [case[1:] for case in FILES], ids=[case[0] for case in FILES])
def test_hostile_file_is_a_config_error(name, text, message):
    with isolated() as folder:
        (folder / name).write_text(text, encoding="utf-8")
        started = time.perf_counter()
        with pytest.raises(ConfigError) as error:
            check(load_config(folder / name, check=True))
        assert message in str(error.value)
        assert name in str(error.value)
        assert time.perf_counter() - started < 10


def test_a_digit_that_is_not_ascii_is_a_plain_key():
    """``'²'.isdigit()`` is true, but int('²') fails: was a ValueError in the loader and in overrides."""
    with isolated() as folder:
        (folder / "c.yaml").write_text("task: {'²': 1}\n", encoding="utf-8")
        assert load_config(folder / "c.yaml", ["+task.³=2"])["task"] == {"²": 1, "³": 2}


OVERRIDES = [
    ("RecursionError-alias-inside-its-anchor", ["+task.a=&x [*x]"], "command line: task.a.0: contains itself"),
    (
        "ValueError-int-tag",
        ["task.num_classes=!!int x"],
        "command line: task.num_classes: cannot read the value '!!int x' as YAML",
    ),
    ("ValueError-5000-digit-int", ["+task.a=" + "9" * 5000], "command line: task.a: cannot read the value"),
    ("RecursionError-200-level-key", ["+task." + ".".join(["a"] * 200) + "=1"], "the key path is 201 levels deep"),
    ("UnsupportedValueType-set", ["+task.a=!!set {a, b}"], "command line: task.a: received {"),
    (
        "TypeError-bytes-in-json",
        ["+task.a=!!binary aGVsbG8=", "--json"],
        "command line: task.a: received b'hello' (bytes)",
    ),
    ("GrammarParseError", ["name=${"], "command line: name: interpolation '${' is not valid"),
    (
        "UnicodeEncodeError-undecodable-byte-in-a-key",
        ["+task.\udcff=1", "--json"],
        "command line: task.\\udcff: the key path holds half",
    ),
    ("TypeError-loggers-not-a-list-at-check", ["loggers=1000.0", "--check"], "command line: loggers: received 1000.0"),
]


@pytest.mark.parametrize("arguments, message", [case[1:] for case in OVERRIDES], ids=[case[0] for case in OVERRIDES])
def test_hostile_override_exits_2_with_one_message(arguments, message):
    with isolated():
        code, out, err = quiet_main(["config", EXAMPLE_CONFIGS / "experiments" / "digits_mlp.yaml", *arguments])
    assert code == 2, out
    assert err.startswith("expresso: error: ") and message in err and "Traceback" not in err, err


def test_a_lone_surrogate_is_refused_before_printing():
    """``expresso config c.json --json`` printed it to stdout and died with a UnicodeEncodeError traceback."""
    with isolated() as folder:
        (folder / "c.json").write_text('{"name": "x\\udc00"}', encoding="utf-8")
        code, out, err = quiet_main(["config", folder / "c.json", "--json"])
    assert code == 2 and "c.json: name: received" in err and "Traceback" not in err, err


def test_a_config_path_too_long_for_the_system_is_not_found():
    """``expresso config xxx...x.yaml`` (300 characters): was an OSError (File name too long) traceback."""
    with isolated():
        code, out, err = quiet_main(["config", "x" * 300 + ".yaml"])
    assert code == 2 and err.endswith(".yaml: config file not found\n"), err


def test_a_run_record_with_a_project_root_that_is_no_path_is_ignored():
    """A run folder's config.yaml reads run.json's project_root: a number there was a TypeError."""
    with isolated() as folder:
        (folder / "config.yaml").write_text("name: x\n", encoding="utf-8")
        (folder / "run.json").write_text('{"project_root": 5}', encoding="utf-8")
        assert load_config(folder / "config.yaml").project_root == folder


@pytest.mark.parametrize(
    "override",
    ["pipelines.classify.metrics=null", "stages.1.frozen=null", "optimizers.classifier.models=null"],
    ids=["pipeline-metrics", "stage-frozen", "optimizer-models"],
)
def test_null_where_leaving_the_key_out_means_a_default(override):
    """Each was a TypeError (iterating None) in the wiring check of ``config --check`` (and in the build)."""
    with isolated():
        code, out, err = quiet_main(
            ["config", EXAMPLE_CONFIGS / "experiments" / "digits_ae_classifier.yaml", "--check", override]
        )
    key = override.partition("=")[0]
    assert code == 2 and f"command line: {key}: received None, expected a list of names" in err, err


def test_an_integer_key_and_its_string_merged_from_two_files():
    """``5`` from YAML and ``"5"`` from JSON in one mapping: an OmegaConf KeyValidationError with an interpolation,
    else a JSON printout with the key twice."""
    with isolated() as folder:
        (folder / "base.json").write_text('{"task": {"5": "b"}}', encoding="utf-8")
        (folder / "c.yaml").write_text("extends: base.json\ntask: {5: a, name: '${name}'}\n", encoding="utf-8")
        with pytest.raises(ConfigError, match=r"c.yaml: task: holds both 5 and '5' as keys"):
            load_config(folder / "c.yaml")
