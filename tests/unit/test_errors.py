"""``expresso.errors.BadInput``: every error that means "fix your input" derives from it, and nothing else does.

The CLI maps exactly this base to exit 2 with one line (tests/unit/test_cli.py);
an exception class that is not bad input is named below with the reason, so a
new error class has to be placed on one side or the other.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
from pathlib import Path

import pytest

import expresso
from expresso.callbacks import NonFiniteLossError
from expresso.commands import UsageError
from expresso.config import ConfigError
from expresso.engine.checkpoints.errors import CheckpointError, CheckpointWriteError
from expresso.engine.graph import GraphError
from expresso.errors import BadInput
from expresso.export import WeightsError
from expresso.runs.folder import RunFolderError
from expresso.runs.record import RecordError

USER_FACING = [ConfigError, UsageError, CheckpointError, RecordError, WeightsError, RunFolderError]
NOT_BAD_INPUT = {
    # Raised while a run trains: the run fails, is recorded as failed and shows its traceback (exit 1).
    "expresso.engine.graph.GraphError": "a model's outputs do not fit its graph node; from the config: a ConfigError",
    "expresso.engine.finite.NonFiniteLossError": "a diverging run: one line, exit 1, recorded failed",
    "expresso.engine.checkpoints.errors.CheckpointWriteError": "a full disk or a lost mount",
    # Control flow, never shown to the user as an error.
    "expresso.callbacks.preemption.Preempted": "a preemption signal: the run is checkpointed (exit 75)",
    "expresso.engine.events.Cancel": "a callback's cancel signal",
    "expresso.engine.checkpoints.writer._ThenFailed": "carries a `then`'s exception across the writer thread, unwrapped",
    "expresso.engine.events.Rollback": "a callback's cancel signal",
    "expresso.engine.events.SkipBatch": "a callback's cancel signal",
    "expresso.engine.events.StopEpoch": "a callback's cancel signal",
    "expresso.engine.events.StopTraining": "a callback's cancel signal",
    # Inside the config layer, which turns each into a ConfigError naming the file and key.
    "expresso.config.callables.CallableNotFound": "a ConfigError at the key that names the callable",
    "expresso.config.files.FileProblem": "a ConfigError naming the file",
    "expresso.config.experiments.PythonFileError": "a ConfigError naming the file; predict's infer_config: a UsageError",
    "expresso.config.files.UnreadableYAML": "a ConfigError naming the file",
    "expresso.config.files._DuplicateKey": "a ConfigError naming the file",
    "expresso.config.interpolation.MissingEnvironmentVariable": "a ConfigError at the interpolating key",
}


@pytest.mark.parametrize("error", USER_FACING, ids=lambda error: error.__name__)
def test_each_user_facing_error_is_bad_input_and_still_a_value_error(error):
    assert issubclass(error, BadInput)
    assert issubclass(error, ValueError)  # callers that catch ValueError (run.json reads, say) still catch it


@pytest.mark.parametrize("error", [GraphError, NonFiniteLossError, CheckpointWriteError], ids=lambda e: e.__name__)
def test_an_error_raised_while_a_run_trains_is_not_bad_input(error):
    assert not issubclass(error, BadInput)


def test_every_exception_class_in_the_package_is_bad_input_or_named_with_why_it_is_not():
    unplaced = []
    for info in pkgutil.walk_packages(expresso.__path__, "expresso."):
        if info.name == "expresso.__main__":  # importing it runs the command
            continue
        module = importlib.import_module(info.name)
        for cls in vars(module).values():
            if inspect.isclass(cls) and issubclass(cls, BaseException) and cls.__module__ == module.__name__:
                name = f"{cls.__module__}.{cls.__qualname__}"
                if not issubclass(cls, BadInput) and name not in NOT_BAD_INPUT:
                    unplaced.append(name)
    assert unplaced == []


def test_the_errors_module_imports_nothing_so_every_layer_can_derive_from_it():
    tree = ast.parse(Path(expresso.errors.__file__).read_text())
    imported = [
        node.module if isinstance(node, ast.ImportFrom) else [alias.name for alias in node.names]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
    ]
    assert imported == ["__future__"]
