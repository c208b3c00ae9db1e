"""Learning curves of real runs: the fit's curves.png, and ``expresso plot`` on two runs and on a metric they lack.

The runs are the shared trainings of tiny.yaml (conftest.py's ``trained``),
so these tests train nothing; the two ``expresso plot`` processes run
together. The figure's lines against metrics.csv's values are checked in
tests/unit/commands/test_plot.py.
"""

from __future__ import annotations

import csv

import matplotlib.image
from cli_runs import one_line_error, tiny_run, together

PNG = b"\x89PNG\r\n\x1a\n"


def test_a_fit_leaves_its_learning_curves_in_the_run_folder(base):
    curves = base / "curves.png"
    assert curves.read_bytes()[:8] == PNG
    assert matplotlib.image.imread(curves).shape == (480, 1280, 4)  # two panels: the losses and val/acc (the monitor)


def test_plot_draws_two_runs_into_one_png_and_refuses_a_metric_they_lack_naming_theirs(trained, base, tmp_path):
    variant = tiny_run(trained, 0.01)
    output = tmp_path / "two.png"
    results = together(
        {
            "two": (["plot", base, variant, "--output", output], None),
            "unknown": (["plot", base, "--metric", "val/f1", "--output", tmp_path / "never.png"], None),
        },
        cwd=tmp_path,
    )
    assert results["two"].returncode == 0, results["two"].stderr
    assert results["two"].stdout == f"written: {output}\n"
    assert output.read_bytes()[:8] == PNG
    with (base / "metrics.csv").open(newline="") as handle:
        metrics = [name for name in csv.DictReader(handle).fieldnames or [] if name not in ("epoch", "step")]
    assert one_line_error(results["unknown"]) == (
        f"expresso: error: --metric val/f1: tiny logged no such metric; its metrics: {', '.join(metrics)}"
    )
    assert not (tmp_path / "never.png").exists()
