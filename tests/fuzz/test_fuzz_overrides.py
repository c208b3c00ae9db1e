"""Random override strings on a valid config: ``expresso config CONFIG *overrides`` exits 0 or 2, never a traceback.

Overrides are built from the pieces their grammar has (``+``, ``~``, dotted
keys, list indices, ``=``) and values that are YAML fragments, file references
and random text; some are random text through and through. ``--check`` and
``--json`` are added at random, and ``expresso graph`` reads the same
overrides.
"""

from __future__ import annotations

import shutil

import yaml
from fuzz_support import TRICKY_STRINGS, YAML_FRAGMENTS, assert_clean_failure, isolated, quiet_main, trees, yaml_text
from hypothesis import example, given
from hypothesis import strategies as st

KEY_PARTS = [
    "trainer",
    "max_epochs",
    "seed",
    "device",
    "devices",
    "optimizer",
    "lr",
    "class",
    "model",
    "hidden",
    "0",
    "1",
    "2",
    "-1",
    "99",
    "metrics",
    "acc",
    "average",
    "callbacks",
    "loggers",
    "task",
    "num_classes",
    "name",
    "scheduler",
    "T_max",
    "dataset",
    "dataloader",
    "num_workers",
    "extends",
    "graph",
    "pipelines",
    "stages",
    "models",
    "encoder",
    "losses",
    "inputs",
    "optimizers",
    "_args_",
    "_partial_",
    "init_from",
    "predict",
    "step",
    "",
    " ",
    "[0]",
    "a b",
    "${x}",
    "²",
    "٣",
    "0" * 25,
    "é",
    "\x00",
    "=",
    "~",
    "+",
]
key_parts = st.one_of(st.sampled_from(KEY_PARTS), st.text(max_size=6))
keys = st.one_of(
    st.lists(key_parts, min_size=1, max_size=4).map(".".join),
    st.sampled_from([".".join(["a"] * 40), "task." * 20 + "x"]),
)
values = st.one_of(
    st.sampled_from(YAML_FRAGMENTS + TRICKY_STRINGS),
    yaml_text,
    trees.map(lambda tree: yaml.safe_dump(tree, default_flow_style=True, width=10_000).strip()),
    st.sampled_from(
        [
            "models/cnn.json",
            "../models/mlp.yaml",
            "models/gru.py",
            "missing.yaml",
            "experiments/digits_mlp.yaml",
            "CONFIG",
            "tasks/digits_parity.yaml",
            "/dev/null.yaml",
            ".yaml",
        ]
    ),
)
structured = st.builds(
    lambda prefix, key, sep, value: f"{prefix}{key}{sep}{value}",
    st.sampled_from(["", "", "+", "~", "++", "+~", "~+", "-", "--"]),
    keys,
    st.sampled_from(["=", "=", "", "==", " = ", ":", "=~"]),
    values,
)
overrides = st.lists(
    st.one_of(structured, st.text(alphabet=list(".=~+[]'\"{}:,-_ab01 $\\\n#!&*é"), max_size=20)), max_size=4
)
EXPERIMENTS = ["digits_mlp.yaml", "digits_ae_classifier.yaml"]


@given(
    experiment=st.sampled_from(EXPERIMENTS),
    overrides=overrides,
    command=st.sampled_from(["config", "config", "graph"]),
    flags=st.lists(st.sampled_from(["--check", "--json"]), unique=True),
)
@example(experiment=EXPERIMENTS[0], overrides=["+task.a=&x [*x]"], command="config", flags=[])
@example(experiment=EXPERIMENTS[0], overrides=["task.num_classes=!!int x"], command="config", flags=[])
@example(experiment=EXPERIMENTS[0], overrides=["+task.a=" + "9" * 5000], command="config", flags=["--json"])
@example(experiment=EXPERIMENTS[0], overrides=["+task.²=1"], command="config", flags=[])
@example(experiment=EXPERIMENTS[0], overrides=["+task." + ".".join(["a"] * 200) + "=1"], command="config", flags=[])
@example(experiment=EXPERIMENTS[0], overrides=["+task.a=!!set {a, b}"], command="config", flags=["--json"])
@example(experiment=EXPERIMENTS[0], overrides=["name=${"], command="config", flags=[])
def test_random_overrides_exit_0_or_2(project_copy, experiment, overrides, command, flags):
    with isolated() as folder:
        shutil.copytree(project_copy / "configs", folder / "configs")
        config = folder / "configs" / "experiments" / experiment
        overrides = [o.replace("CONFIG", str(config)) for o in overrides]
        code, out, err = quiet_main([command, str(config), *flags, *overrides])
        assert_clean_failure(code, err)
        if code == 0:
            assert out.strip()
