"""What the fuzz tests share: strategies for hostile config trees and text, and running the CLI in-process.

The oracles:

- ``check(load_config(file, check=True))`` (``expresso.assembly.check``: what ``expresso
  train`` checks) returns a Config or raises ``ConfigError``;
  anything else (a RecursionError, a KeyError from deep inside) is a bug.
- ``expresso.cli.main(argv)`` returns 0 or 2; on 2, stderr holds a message
  and no "Traceback". argparse's own ``SystemExit(2)`` (and ``SystemExit(0)``
  for ``--help``) is fine; ``--debug`` is never generated (it shows tracebacks
  on purpose).

Every example runs in its own temporary folder, made the working directory,
and leaves sys.path, sys.modules, os.environ and the ``expresso`` logger as it
found them (``isolated``): hypothesis runs all examples inside one call of the
test function, so pytest's function-scoped fixtures (tmp_path, capsys,
monkeypatch) would be shared by all of them. Output is captured per call
(``quiet_main``) for the same reason.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import json
import logging
import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import yaml
from hypothesis import settings
from hypothesis import strategies as st

from expresso.config.schema import ROOT_KEYS
from expresso.config.specs import EarlyStoppingSpec, NodeSpec, PipelineSpec, StageSpec, UpdateSpec, keys

NODE_KEYS, PIPELINE_KEYS, STAGE_KEYS = keys(NodeSpec), keys(PipelineSpec), keys(StageSpec)
UPDATE_KEYS, EARLY_STOPPING_KEYS = keys(UpdateSpec), keys(EarlyStoppingSpec)

REPO = Path(__file__).resolve().parents[2]
EXAMPLE_CONFIGS = REPO / "examples" / "digits" / "configs"
PROFILE_ENV = "EXPRESSO_FUZZ_PROFILE"


def at_most(examples: int) -> settings:
    """Settings for a test whose examples are slow (a run folder copied and a command run): the profile's count, capped.

    The cap matters only for the long profile: 10,000 examples of these would take about ten minutes each.
    """
    return settings(max_examples=min(settings.default.max_examples, examples))


# -- running things in isolation --------------------------------------------------------------------
@contextlib.contextmanager
def isolated() -> Iterator[Path]:
    """A fresh temporary folder as the working directory; sys.path, sys.modules, os.environ and the logger restored after.

    The CLI's commands set the ``expresso`` logger's level and ``propagate`` (session.py): left so, later tests'
    ``caplog`` would see nothing of it.
    """
    saved_cwd, saved_path, saved_modules, saved_env = os.getcwd(), list(sys.path), set(sys.modules), dict(os.environ)
    logger = logging.getLogger("expresso")
    saved_logger = (logger.level, logger.propagate, list(logger.handlers))
    with tempfile.TemporaryDirectory(prefix="expresso-fuzz-") as folder:
        folder = Path(folder).resolve()
        os.chdir(folder)
        try:
            yield folder
        finally:
            os.chdir(saved_cwd)
            sys.path[:] = saved_path
            os.environ.clear()
            os.environ.update(saved_env)
            logger.setLevel(saved_logger[0])
            logger.propagate = saved_logger[1]
            logger.handlers[:] = saved_logger[2]
            for name in set(sys.modules) - saved_modules:
                file = getattr(sys.modules[name], "__file__", None) or ""
                if name.startswith("_expresso_user_") or str(file).startswith(str(folder)):
                    del sys.modules[name]
            importlib.invalidate_caches()


def quiet_main(argv: list) -> tuple[int, str, str]:
    """``expresso.cli.main(argv)`` with stdout and stderr captured: (exit code, stdout, stderr).

    ``SystemExit`` from argparse is returned as its code; every other exception propagates.
    """
    from expresso.cli import main

    # UTF-8 streams with Python's own error handlers: stdout strict, stderr backslashreplace. Text that cannot be
    # printed fails here as it would on a terminal.
    out = io.TextIOWrapper(io.BytesIO(), encoding="utf-8", errors="strict", write_through=True)
    err = io.TextIOWrapper(io.BytesIO(), encoding="utf-8", errors="backslashreplace", write_through=True)
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main([str(a) for a in argv])
        except SystemExit as exc:
            code = 0 if exc.code is None else exc.code if isinstance(exc.code, int) else 1  # as the interpreter exits
            print(f"[SystemExit({exc.code!r})]", file=err)
    return code, _text(out), _text(err)


def _text(stream: io.TextIOWrapper) -> str:
    stream.flush()
    return stream.buffer.getvalue().decode("utf-8")


def assert_clean_failure(code: int, err: str, allowed: tuple = (0, 2)) -> None:
    assert code in allowed, f"exit code {code}; stderr:\n{err}"
    if code == 2:
        assert err.strip(), "exit code 2 without a message on stderr"
        assert "Traceback" not in err, err


# -- scalars and text ---------------------------------------------------------------------------------
TRICKY_STRINGS = [
    "1e3",
    "1E-5",
    "+1e3",
    "-.5",
    "3.",
    "0x10",
    "0o17",
    "0b11",
    "1_000",
    "1:30",
    "yes",
    "no",
    "on",
    "Off",
    "null",
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
    "${x}",
    "${task.a}",
    "${task.num_classes}",
    "${trainer.max_epochs}",
    "${trainer}",
    "${name}",
    "${env:HOME}",
    "${env:EXPRESSO_NOPE}",
    "${env:EXPRESSO_NOPE,3}",
    "${env:}",
    "${oc.env:HOME}",
    "${oc.select:a,b}",
    "${..a}",
    "${.}",
    "${}",
    "${${x}}",
    "${task.${x}}",
    "\\${x}",
    "$${x}",
    "a ${b} c",
    "}${",
    "${a:b:c}",
    "${0}",
    "${graph.0}",
    "${stages.-1}",
    "#",
    "- item",
    "key: value",
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
    "\t",
    "é∑",
    "\x00",
    "\ufeff",
    "\u2028",
    "\ud800",
    "[1, 2]",
    "{a: 1}",
    "auto",
    "cpu",
    "cuda:0",
    "cuda:-1",
    "min",
    "max",
    "val/loss",
    "val/acc",
    "sequential",
    "round_robin",
    "epoch",
    "step",
    "csv",
    "x",
    "y",
    "y_hat",
    "z",
    # file references, at component keys read as files
    "other.yaml",
    "other.json",
    "main.yaml",
    "main.json",
    "missing.yaml",
    "../other.yaml",
    "sub/../other.yaml",
    "/nonexistent/x.yaml",
    "other.YML",
    ".yaml",
    "folder.yaml",
    "other.py",
    "main.py",
    "x" * 300 + ".yaml",
    "a\x00.json",
]
CLASS_PATHS = [
    # real, the kind expresso configs use
    "torch.optim.AdamW",
    "torch.optim.SGD",
    "torch.optim.lr_scheduler.CosineAnnealingLR",
    "torch.optim.lr_scheduler.StepLR",
    "expresso.data.Digits",
    "expresso.models.MLP",
    "expresso.models.Dense",
    "torch.nn.CrossEntropyLoss",
    "torch.nn.MSELoss",
    "torch.nn.Linear",
    "torch.nn.Sequential",
    "torchmetrics.classification.MulticlassAccuracy",
    "expresso.callbacks.EarlyStopping",
    "expresso.callbacks.Checkpoint",
    "expresso.callbacks.NaNGuard",
    "torch.argmax",
    "torch.flatten",
    "functools.partial",
    # odd: not callable, no signature, typing objects, builtins, bad spellings
    "math.pi",
    "builtins.int",
    "builtins.print",
    "builtins.dict",
    "typing.List",
    "typing.Optional",
    "collections.OrderedDict",
    "torch.Tensor",
    "torch.float32",
    "torch.optim.AdamX",
    "torch.optm.AdamW",
    "nosuchmodule.X",
    "",
    " ",
    ".",
    "..",
    "a..b",
    "torch.",
    ".torch",
    "1abc",
    "torch.optim.AdamW.",
    ":",
    "x.py:Y",
    "main.py:config",
    "/etc/passwd.py:X",
    "a:b:c",
    "é.ü",
    "x" * 300 + ".py:Net",
    "expresso.config.errors.Problem",
    "expresso.config.ConfigError",
    "os.path.join",
    "pathlib.Path",
    "dataclasses.dataclass",
]
ARGUMENT_NAMES = [
    "lr",
    "weight_decay",
    "betas",
    "momentum",
    "in_features",
    "out_features",
    "hidden",
    "num_classes",
    "split",
    "val_fraction",
    "T_max",
    "step_size",
    "average",
    "monitor",
    "mode",
    "patience",
    "min_delta",
    "every_n_steps",
    "dim",
    "start_dim",
    "output_activation",
    "out_shape",
    "bias",
    "reduction",
    "label_smoothing",
    "interval",
    "inputs",
    "weight",
    "models",
    "param_groups",
    "scheduler",
    "clip_grad_norm",
    "clip_grad_value",
    "_args_",
    "_partial_",
    "class",
]
NAMES = [
    "model",
    "encoder",
    "decoder",
    "classifier",
    "digits",
    "dataset",
    "main",
    "x",
    "y",
    "y_hat",
    "z",
    "x_hat",
    "loss",
    "reconstruct",
    "classify",
    "acc",
    "reconstruction",
    "classification",
    "autoencoder",
    "optimizer",
    "pretrain",
    "probe",
]

text = st.text(max_size=12)
strings = st.one_of(st.sampled_from(TRICKY_STRINGS), text, st.sampled_from(NAMES), st.sampled_from(CLASS_PATHS))
scalars = st.one_of(
    strings,
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([0, 1, -1, 2, 10, 2**31, 2**63, -(2**63) - 1]),
    st.floats(),  # nan and inf included
    st.booleans(),
    st.none(),
)
keys = st.one_of(
    st.sampled_from([*ROOT_KEYS, "extends", *ARGUMENT_NAMES, *NAMES, *NODE_KEYS, *PIPELINE_KEYS, *STAGE_KEYS]),
    text,
    st.integers(min_value=-3, max_value=20),
)


def mappings(key_strategy, values, max_size=5):
    return st.dictionaries(key_strategy, values, max_size=max_size)


def components(children):
    """``{class: <path>, ...random keyword arguments}``."""
    kwargs = mappings(st.one_of(st.sampled_from(ARGUMENT_NAMES), text), children, max_size=4)
    return st.builds(lambda cls, rest: {"class": cls, **rest}, st.sampled_from(CLASS_PATHS), kwargs)


def extend(children):
    return st.one_of(st.lists(children, max_size=4), mappings(keys, children), components(children))


trees = st.recursive(scalars, extend, max_leaves=25)
names = st.one_of(st.sampled_from(NAMES), text)
name_lists = st.one_of(st.lists(names, max_size=3), names, scalars)


def _entry(allowed_keys, special: dict):
    """A mapping with keys mostly from ``allowed_keys``; some keys drawn from ``special`` strategies."""
    ordinary = mappings(st.one_of(st.sampled_from(allowed_keys), text), st.one_of(name_lists, trees), max_size=4)
    chosen = st.fixed_dictionaries({}, optional=special)
    return st.one_of(st.builds(lambda a, b: {**a, **b}, ordinary, chosen), trees)


graph_nodes = _entry(
    NODE_KEYS,
    {"model": names, "function": components(trees), "inputs": name_lists, "outputs": name_lists, "detach": name_lists},
)
updates = _entry(UPDATE_KEYS, {"losses": name_lists, "optimizers": name_lists})
pipelines = _entry(
    PIPELINE_KEYS,
    {
        "dataset": st.one_of(names, components(trees)),
        "losses": name_lists,
        "metrics": name_lists,
        "nodes": name_lists,
        "batch": name_lists,
        "updates": st.one_of(st.lists(updates, max_size=3), trees),
    },
)
stages = _entry(
    STAGE_KEYS,
    {
        "train": name_lists,
        "val": name_lists,
        "frozen": name_lists,
        "epochs": scalars,
        "early_stopping": _entry(EARLY_STOPPING_KEYS, {"monitor": strings, "mode": strings, "patience": scalars}),
        "until": trees,
        "interleave": st.one_of(strings, mappings(names, scalars)),
    },
)
named_components = mappings(names, st.one_of(components(trees), strings, trees), max_size=3)
settings_values = mappings(
    st.one_of(
        st.sampled_from(
            [
                "max_epochs",
                "max_steps",
                "batch_size",
                "seed",
                "device",
                "devices",
                "monitor",
                "mode",
                "val_every_n_epochs",
                "log_every_n_steps",
                "limit_batches",
                "compile",
                "num_workers",
                "pin_memory",
                "shuffle",
                "eval_batch_size",
                "prefetch_factor",
            ]
        ),
        text,
    ),
    scalars,
)
ROOT_VALUES = {
    "model": st.one_of(components(trees), strings, trees),
    "dataset": st.one_of(components(trees), strings, trees),
    "loss": st.one_of(components(trees), strings, trees),
    "optimizer": st.one_of(components(trees), strings, trees),
    "scheduler": st.one_of(components(trees), st.lists(components(trees), max_size=2), strings, trees),
    "step": st.one_of(components(trees), trees),
    "predict": st.one_of(components(trees), trees),
    "models": st.one_of(named_components, trees),
    "datasets": st.one_of(named_components, trees),
    "losses": st.one_of(named_components, trees),
    "optimizers": st.one_of(named_components, trees),
    "metrics": st.one_of(named_components, trees),
    "callbacks": st.one_of(st.lists(st.one_of(components(trees), strings), max_size=3), trees),
    "loggers": st.one_of(st.lists(st.one_of(strings, components(trees)), max_size=3), trees),
    "graph": st.one_of(st.lists(graph_nodes, max_size=3), trees),
    "pipelines": st.one_of(mappings(names, pipelines, max_size=3), trees),
    "stages": st.one_of(st.lists(stages, max_size=3), trees),
    "task": st.one_of(mappings(st.sampled_from(["num_classes", "target", "in_features"]), scalars), trees),
    "trainer": st.one_of(settings_values, trees),
    "dataloader": st.one_of(settings_values, trees),
    "name": st.one_of(strings, trees),
    "init_from": st.one_of(strings, trees),
    "extends": st.one_of(
        st.sampled_from(["other.yaml", "other.json", "main.yaml", "missing.yaml", "other.py"]),
        st.lists(strings, max_size=2),
        trees,
    ),
}
# A config: mostly expresso's own keys with values shaped like theirs, sometimes anything at all.
config_trees = st.one_of(
    st.fixed_dictionaries({}, optional=ROOT_VALUES).flatmap(
        lambda tree: mappings(keys, trees, max_size=2).map(lambda extra: {**tree, **extra})
    ),
    mappings(keys, trees),
    trees,
)


def write_tree(path: Path, tree, style: str) -> None:
    """Write ``tree`` to ``path`` the way ``style`` says (the file's suffix is the caller's)."""
    if style == "json":
        path.write_text(json.dumps(tree), encoding="utf-8")
    elif style == "yaml-flow":
        path.write_text(yaml.safe_dump(tree, default_flow_style=True, allow_unicode=True), encoding="utf-8")
    elif style == "yaml-block":
        path.write_text(yaml.safe_dump(tree, default_flow_style=False, sort_keys=False), encoding="utf-8")
    elif style == "python":
        path.write_text(f"config = {tree!r}\n", encoding="utf-8")
    else:
        raise ValueError(style)


# YAML fragments: tags, anchors, merge keys, flow collections left open, document markers.
YAML_FRAGMENTS = [
    "!!int x",
    "!!int 1.5",
    "!!float x",
    "!!bool maybe",
    "!!bool",
    "!!null x",
    "!!str",
    "!!binary ***",
    "!!timestamp x",
    "!!timestamp 2020-13-45",
    "!!set {a, b}",
    "!!omap [a: 1, a: 2]",
    "!!pairs [a: 1]",
    "!!map [1]",
    "!!seq {a: 1}",
    "!!python/object:os.system {}",
    "!!python/name:os.system",
    "!custom x",
    "!<tag:x> y",
    "&a [*a]",
    "*a",
    "&a x",
    "<<: 5",
    "{<<: *a}",
    "{<<: [1]}",
    "{<<: {a: 1}, a: 2}",
    "? [1, 2]\n: x",
    "? {a: 1}\n: x",
    "{[1]: x}",
    "{1.5: x}",
    "{null: x}",
    "{true: x}",
    "{a: 1, a: 2}",
    "[1, 2",
    "{a: 1",
    "]",
    "}",
    "- a\n- b",
    "a: b\nc",
    "---\na: 1\n---\nb: 2",
    "...",
    "---",
    "%YAML 1.1\n---\na: 1",
    "%TAG ! tag:x,\n---\n!y z",
    "'unterminated",
    '"unterminated',
    '"\\x00"',
    '"\\ud800"',
    "1e999",
    "-1e999",
    "9" * 4400,
    "0x" + "f" * 5000,
    "1:30:00",
    "0o9",
    "0b2",
    "1__0",
    ".",
    "..",
    "=",
    "==",
    "~",
    "+",
    "[" * 60 + "]" * 60,
    "{a: " * 60 + "1" + "}" * 60,
    "[" * 2000 + "]" * 2000,
    "{a: " * 2000 + "1" + "}" * 2000,
    "a: &x [*x]",
    "a: &x {b: *x}",
]
yaml_text = st.one_of(
    st.sampled_from(YAML_FRAGMENTS),
    st.lists(st.sampled_from(YAML_FRAGMENTS + TRICKY_STRINGS), min_size=1, max_size=4).map(" ".join),
    st.lists(st.sampled_from(YAML_FRAGMENTS + TRICKY_STRINGS), min_size=1, max_size=4).map("\n".join),
    st.text(alphabet=list("[]{}:,-?!&*<>|#'\" \n\t~.=+$\\%@`") + ["a", "1", "x", "é"], max_size=30),
    st.text(max_size=30),
)
