"""Hostile-input fuzzing of the config loader and the CLI (hypothesis).

Two settings profiles:

- ``fuzz-ci`` (the default, what ``make test`` runs): bounded, each test a few seconds;
- ``long`` (``EXPRESSO_FUZZ_PROFILE=long``, what ``make fuzz`` runs): 10,000 examples per test,
  except the tests that copy a run folder per example, capped at 2,000 or 3,000
  (``fuzz_support.at_most``); about 35 minutes in all on 2 cores.

The profile is loaded for the session, but only tests/fuzz uses it: every other
hypothesis test in the suite sets its own ``max_examples`` and ``deadline``.

The properties (fuzz_support's docstring says how each is checked): bad input
is a ``ConfigError`` from ``load_config``, and exit status 2 with one message and
no traceback from ``expresso.cli.main``; never another exception, a hang, or a
file that claims a success.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from fuzz_support import EXAMPLE_CONFIGS, PROFILE_ENV, isolated, quiet_main
from hypothesis import HealthCheck, settings

settings.register_profile(
    "fuzz-ci",
    max_examples=60,
    deadline=None,
    derandomize=True,  # CI sees the same examples every run: a red CI is a change's doing, not the dice's (make fuzz explores)
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    "long",
    max_examples=10_000,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)
settings.load_profile("long" if os.environ.get(PROFILE_ENV) == "long" else "fuzz-ci")


@pytest.fixture(scope="session")
def project_copy(tmp_path_factory) -> Path:
    """A copy of the digits example's configs/ (experiments, models, datasets, tasks, defaults)."""
    root = tmp_path_factory.mktemp("fuzz-project")
    shutil.copytree(EXAMPLE_CONFIGS, root / "configs")
    return root


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory) -> Path:
    """One real run folder (digits MLP, one batch of each split), trained in-process once per session."""
    runs_root = tmp_path_factory.mktemp("fuzz-runs")
    with isolated():
        code, _, err = quiet_main(
            ["train", EXAMPLE_CONFIGS / "experiments" / "digits_mlp.yaml", "--dev-run", "1", "--runs-root", runs_root]
        )
    assert code == 0, err
    (run_dir,) = runs_root.glob("*/*")
    assert (run_dir / "checkpoints" / "last.ckpt").is_file() and (run_dir / "checkpoints" / "best.ckpt").is_file()
    return run_dir
