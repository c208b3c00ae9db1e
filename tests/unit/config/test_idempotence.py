"""The printed config is a fixed point: saved and loaded again it resolves to itself.

This is what makes a run folder's ``config.yaml`` reproduce the run, so it is
tested on random trees (under ``task``, which accepts any mapping) full of
strings that YAML or OmegaConf would like to reinterpret.
"""

from __future__ import annotations

import json
import math
import tempfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from expresso import load_config
from expresso.config.files import dump_yaml
from expresso.config.interpolation import escape  # writes generated text as literal input

TRICKY_STRINGS = [
    "1e3",
    "1E-5",
    "+1e3",
    "-.5",
    "3.",
    "12",
    "-0",
    "0x10",
    "0o17",
    "0b11",
    "1_000",
    "1:30",
    "190:20:30",
    "yes",
    "no",
    "on",
    "Off",
    "y",
    "n",
    "true",
    "False",
    "null",
    "Null",
    "~",
    "",
    " ",
    "???",
    "2024-01-01",
    "2024-01-01 10:00:00",
    ".inf",
    "-.inf",
    ".nan",
    "$",
    "{",
    "}",
    "${",
    "$}",
    "{}",
    "${x}",
    "${task.a}",
    "a ${b} c",
    "$${x}",
    "${env:HOME}",
    "}${",
    "\\",
    "a\\b",
    "a\\\\b",
    "\\${x}",
    "\\\\${x}",
    "C:\\${run}\\",
    "#",
    "# comment",
    "- item",
    "key: value",
    "? q",
    "'",
    '"',
    "!tag",
    "*ref",
    "&anchor",
    "|",
    ">",
    "%YAML",
    "@",
    "`",
    "\n",
    "a\nb",
    "\t",
    " lead",
    "trail ",
    "é∑",
    "[1, 2]",
    "{a: 1}",
]
ALPHABET = list("ab1e.-+_:$ {}#'\"\\\n") + ["é"]

strings = st.one_of(st.sampled_from(TRICKY_STRINGS), st.text(alphabet=ALPHABET, max_size=10))
scalars = st.one_of(
    strings,
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False),
    st.booleans(),
    st.none(),
)
keys = st.one_of(
    st.text(alphabet="abcxyz_019", min_size=1, max_size=6),
    st.sampled_from(["1e3", "null", "yes", "class", "extends", "_args_", "model", "a.b", "x-y", "0"]),
    st.integers(min_value=0, max_value=99),
)


def mappings(values):
    # 0 and "0" in one mapping cannot be written as JSON, and OmegaConf refuses them side by side.
    return st.dictionaries(keys, values, max_size=4).filter(lambda d: len({str(k) for k in d}) == len(d))


trees = st.recursive(
    scalars, lambda children: st.one_of(st.lists(children, max_size=4), mappings(children)), max_leaves=20
)
tasks = mappings(trees)


def typed(value):
    """The tree with each scalar tagged by its type, so 1 == True and 1 == 1.0 do not hide a change."""
    if isinstance(value, dict):
        return {typed(k): typed(v) for k, v in value.items()}
    if isinstance(value, list):
        return [typed(v) for v in value]
    if isinstance(value, float) and math.isinf(value):
        return ("float", str(value))
    return (type(value).__name__, value)


def write_input(folder: Path, task: dict, fmt: str) -> Path:
    if fmt == "json":
        path = folder / "exp.json"
        path.write_text(json.dumps({"task": escape(task)}), encoding="utf-8")
    else:
        path = folder / "exp.yaml"
        path.write_text(dump_yaml({"task": escape(task)}), encoding="utf-8")
    return path


@settings(max_examples=60, deadline=None)
@given(task=tasks, fmt=st.sampled_from(["yaml", "json"]))
def test_random_config_printed_and_loaded_again_is_the_same_tree(task, fmt):
    expected = json.loads(json.dumps(task)) if fmt == "json" else task  # JSON keys are strings
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        first = load_config(write_input(folder, task, fmt))
        assert typed(first["task"]) == typed(expected)

        printed = first.to_yaml()
        (folder / "printed.yaml").write_text(printed, encoding="utf-8")
        second = load_config(folder / "printed.yaml")
        assert typed(second.to_dict()) == typed(first.to_dict())
        assert second.to_yaml() == printed

        if fmt == "json":  # string keys only: the JSON printout is a fixed point too
            (folder / "printed.json").write_text(first.to_json(), encoding="utf-8")
            third = load_config(folder / "printed.json")
            assert typed(third.to_dict()) == typed(first.to_dict())
            assert third.to_json() == first.to_json()


COMPOSED = {
    "configs/experiments/base.yaml": """\
        task: ../tasks/digits.json
        model: ../models/mlp.yaml
        optimizer: {class: torch.optim.AdamW, lr: 1.0e-3, betas: [0.9, 0.99]}
        trainer: {max_epochs: 10, monitor: val/acc, mode: max}
        """,
    "configs/experiments/exp.yaml": """\
        extends: base.yaml
        name: digits-mlp-${task.num_classes}
        optimizer: {class: torch.optim.SGD, lr: 0.1}
        metrics:
          acc: ../metrics/acc.py
        callbacks:
          - {class: expresso.callbacks.EarlyStopping, monitor: '${trainer.monitor}', patience: 3}
        trainer: {seed: 7, batch_size: '${task.batch}'}
        """,
    "configs/tasks/digits.json": '{"num_classes": 10, "batch": 32, "pattern": "\\\\${literal}", "when": "2024-01-01"}',
    "configs/models/mlp.yaml": """\
        class: torch.nn.Linear
        in_features: 64
        out_features: ${task.num_classes}
        """,
    "configs/metrics/acc.py": "config = {'class': 'torchmetrics.classification.MulticlassAccuracy', 'average': 'micro'}\n",
}


def test_resolved_printout_of_a_composed_config_is_a_fixed_point(write, in_tmp):
    write(COMPOSED)
    first = load_config("configs/experiments/exp.yaml", ["task.num_classes=3", "+task.note=1e3"])
    assert first["name"] == "digits-mlp-3"
    assert first["model"] == {"class": "torch.nn.Linear", "in_features": 64, "out_features": 3}
    assert first["trainer"]["batch_size"] == 32
    assert first["callbacks"][0]["monitor"] == "val/acc"
    assert first["task"] == {
        "num_classes": 3,
        "batch": 32,
        "pattern": "${literal}",
        "when": "2024-01-01",
        "note": 1000.0,
    }

    printed = first.to_yaml()
    write({"runs/config.yaml": printed})
    second = load_config("runs/config.yaml")
    assert second.to_dict() == first.to_dict()
    assert second.to_yaml() == printed


def test_checked_printout_with_injected_values_is_a_fixed_point(write, in_tmp):
    write(COMPOSED)
    first = load_config("configs/experiments/exp.yaml", check=True)
    assert first["metrics"]["acc"]["num_classes"] == 10
    printed = first.to_yaml()
    write({"runs/config.yaml": printed})
    second = load_config("runs/config.yaml", check=True)
    assert second.to_dict() == first.to_dict()
    assert second.to_yaml() == printed
