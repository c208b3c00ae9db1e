"""The report's figures against hand computations: where each trial's point and line fall, and which axis is logarithmic."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from expresso.analysis.figures import parallel, versus
from expresso.analysis.groups import Group, Trial


def group() -> Group:
    trials = [
        Trial("trial 0", "completed", 0.9, {"lr": 1e-4, "hidden": [64], "drop": 0.1}),
        Trial("trial 1", "completed", 0.8, {"lr": 1e-2, "hidden": [128, 64], "drop": 0.3}),
        Trial("trial 2", "completed", 0.85, {"lr": 1e-3, "hidden": [64], "drop": 0.2}),
        Trial("trial 3", "pruned", None, {"lr": 3e-4, "hidden": [64], "drop": 0.0}, reached=0.4),
    ]
    parameters = {"lr": "log-uniform", "hidden": "choice", "drop": "uniform"}
    return Group("sweep", Path("."), "val/acc", "maximize", parameters, trials)


def test_the_objective_against_a_log_uniform_parameter_has_a_log_axis_and_a_point_per_trial():
    ax = versus(group(), "lr").axes[0]
    assert ax.get_xscale() == "log"
    scored, pruned = (collection.get_offsets().tolist() for collection in ax.collections)
    assert scored == [[1e-4, 0.9], [1e-2, 0.8], [1e-3, 0.85]]
    assert pruned == [[3e-4, 0.4]]  # where the pruner stopped it


def test_a_choice_of_lists_is_categories_in_order():
    ax = versus(group(), "hidden").axes[0]
    assert ax.get_xscale() == "linear"
    assert [label.get_text() for label in ax.get_xticklabels()] == ["[128, 64]", "[64]"]
    assert ax.collections[0].get_offsets().tolist() == [[1.0, 0.9], [0.0, 0.8], [1.0, 0.85]]


def test_parallel_coordinates_draw_each_scored_trial_scaled_to_each_axis_range_worst_first():
    lines = parallel(group()).axes[0].get_lines()
    drawn = [line.get_ydata().tolist() for line in lines if len(line.get_xdata()) == 4]
    log = [math.log(v) for v in (1e-4, 1e-2, 1e-3)]
    expected = {  # lr on a log scale, hidden by category, drop and val/acc linearly over the scored trials' range
        0.9: [0.0, 1.0, 0.0, 1.0],
        0.8: [1.0, 0.0, 1.0, 0.0],
        0.85: [(log[2] - log[0]) / (log[1] - log[0]), 1.0, 0.5, 0.5],
    }
    order = [0.8, 0.85, 0.9]  # the best drawn last, on top
    assert [y for line in drawn for y in line] == pytest.approx([y for value in order for y in expected[value]])
