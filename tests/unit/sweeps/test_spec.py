"""A sweep's spec: what each parameter kind tries, and the one line naming the file and key of each mistake."""

from __future__ import annotations

import random

import pytest

from expresso.config import ConfigError
from expresso.sweeps.spec import Parameter, parse


def where(path: tuple) -> str:
    return "exp.yaml"


def spec(section=None, **flags):
    return parse(section, where, monitor="val/acc", mode="max", **flags)


def error(section=None, **flags) -> str:
    with pytest.raises(ConfigError) as caught:
        spec(section, **flags)
    return str(caught.value)


def test_a_grid_is_every_combination_of_its_discrete_kinds():
    parsed = spec(
        {
            "parameters": {
                "optimizer.lr": {"choice": [1e-3, 3e-3]},
                "trainer.batch_size": {"range": [32, 128, 32]},
                "trainer.seed": {"int": [0, 2]},
            }
        }
    )
    assert [p.values() for p in parsed.parameters] == [[1e-3, 3e-3], [32, 64, 96, 128], [0, 1, 2]]
    assert parsed.search == "grid" and parsed.trials == 2 * 4 * 3
    assert (parsed.objective.metric, parsed.objective.direction) == ("val/acc", "maximize")


def test_a_float_range_includes_its_stop_without_rounding_noise():
    assert Parameter("x", "range", (0.1, 0.5, 0.1)).values() == [0.1, 0.2, 0.3, 0.4, 0.5]


def test_the_flags_add_parameters_and_win_over_the_section():
    parsed = spec(
        {"parameters": {"optimizer.lr": {"choice": [1.0]}}, "jobs": 1},
        grid=["optimizer.lr=0.1,0.2", "model.hidden=[8],[16]"],
        jobs=2,
    )
    assert {p.key: p.values() for p in parsed.parameters} == {"optimizer.lr": [0.1, 0.2], "model.hidden": [[8], [16]]}
    assert parsed.jobs == 2


def test_random_samples_each_kind_within_its_bounds_from_the_seed():
    parsed = spec(random_=["optimizer.lr=log-uniform:1e-4,1e-2", "x=uniform:0,1", "n=int:1,3"], trials=5)
    assert parsed.search == "random" and parsed.trials == 5
    rng = random.Random(0)
    samples = [{p.key: p.sample(rng) for p in parsed.parameters} for _ in range(200)]
    assert all(1e-4 <= s["optimizer.lr"] <= 1e-2 and 0 <= s["x"] <= 1 and s["n"] in (1, 2, 3) for s in samples)
    assert {s["n"] for s in samples} == {1, 2, 3}


def test_the_objective_defaults_to_the_monitor_and_its_mode():
    parsed = parse({"parameters": {"a": {"choice": [1]}}}, where, monitor="val/loss", mode="min")
    assert (parsed.objective.metric, parsed.objective.direction) == ("val/loss", "minimize")


@pytest.mark.parametrize(
    ("section", "flags", "expected"),
    [
        (
            {"parameters": {"optimizer.lr": {"loguniform": [1, 2]}}},
            {},
            "exp.yaml: sweep.parameters.optimizer.lr: unknown kind 'loguniform', expected one of choice, range, uniform, log-uniform, int; did you mean 'log-uniform'?",
        ),
        (
            {"parameters": {"optimizer.lr": {"uniform": [0.1, 0.01]}}},
            {"search": "random", "trials": 2},
            "exp.yaml: sweep.parameters.optimizer.lr: uniform: received [0.1, 0.01] (list), expected [low, high] with low < high",
        ),
        (
            {"parameters": {"optimizer.lr": {"uniform": [0.01, 0.1]}}},
            {},
            "exp.yaml: sweep.parameters.optimizer.lr: a grid needs a choice, range or int; uniform is continuous (use search: random or optuna)",
        ),
        (
            {"parameters": {"a": {"choice": [1]}}, "trial": 3},
            {},
            "exp.yaml: sweep.trial: unknown key; did you mean 'trials'?",
        ),
        (
            {"parameters": {"a": {"choice": [1]}}},
            {"trials": 3},
            "exp.yaml: --trials: received 3: a grid runs every combination; trials is for random and optuna searches",
        ),
        (
            {"parameters": {"a": {"choice": [1]}}, "search": "optuna"},
            {},
            "exp.yaml: sweep.trials: a optuna search needs a budget: sweep.trials or --trials N",
        ),
        (
            {"parameters": {"a": {"choice": [1]}}, "pruner": {"class": "optuna.pruners.MedianPruner"}},
            {},
            "exp.yaml: sweep.pruner: a pruner is Optuna's: it needs search: optuna (the search is grid)",
        ),
        (
            None,
            {"random_": ["optimizer.lr=loguniform:1,2"], "trials": 2},
            "command line: --random: received 'optimizer.lr=loguniform:1,2', expected key=KIND:a,b (KIND: choice, range, uniform, log-uniform, int); did you mean 'log-uniform'?",
        ),
        (None, {}, "exp.yaml: sweep.parameters: no parameter to sweep: give sweep.parameters, --grid or --random"),
    ],
)
def test_each_mistake_is_one_line_naming_the_file_and_the_key(section, flags, expected):
    assert error(section, **flags) == expected
