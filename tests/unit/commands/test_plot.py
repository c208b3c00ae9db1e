"""``expresso plot``: each line of the figure is a run's metrics.csv column, as the History callback wrote it."""

from __future__ import annotations

import csv
import functools
import json
import shutil
import sys
from pathlib import Path

import pytest
import torch
import torchmetrics
from torch import nn
from torch.nn import functional as F
from torch.utils.data import TensorDataset

from expresso.callbacks import History
from expresso.cli import main
from expresso.commands.plot import draw
from expresso.engine import Trainer
from expresso.runs.curves import RunHistory, figure, read_history


def trained_run(root: Path, name: str, lr: float, monitor: str = "val/acc") -> Path:
    """A run folder whose metrics.csv the real History callback wrote: 3 epochs of 3 steps, a step row every step, accuracy."""
    run_dir = root / name / "20260101-000000-abcdef"
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(12, 3, generator=generator)
    data = TensorDataset(x, (x.sum(dim=1) > 0).long())
    torch.manual_seed(0)
    Trainer(
        model=nn.Linear(3, 2),
        loss=F.cross_entropy,
        optimizer=functools.partial(torch.optim.SGD, lr=lr),
        train_data=data,
        val_data=data,
        metrics={"acc": torchmetrics.classification.MulticlassAccuracy(num_classes=2, average="micro")},
        callbacks=[History(log_every_n_steps=1)],
        settings={"max_epochs": 3, "batch_size": 4, "device": "cpu"},
        dataloader={"shuffle": False},
        run_dir=run_dir,
    ).fit()
    (run_dir / "config.yaml").write_text(f"name: {name}\ntrainer: {{monitor: {monitor}}}\n")
    (run_dir / "run.json").write_text(json.dumps({"name": name, "status": "completed"}))
    return run_dir


def csv_series(run_dir: Path, metric: str) -> tuple[list[float], list[float]]:
    """(steps, values) of the rows where ``metric`` has a value: read with the csv module, independently of expresso."""
    with (run_dir / "metrics.csv").open(newline="") as handle:
        rows = [row for row in csv.DictReader(handle) if row.get(metric)]
    return [float(row["step"]) for row in rows], [float(row[metric]) for row in rows]


def lines(axes) -> dict[str, tuple[list[float], list[float]]]:
    return {line.get_label(): (list(line.get_xdata()), list(line.get_ydata())) for line in axes.lines}


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory) -> list[Path]:
    """Read, never changed, by the tests of this module."""
    root = tmp_path_factory.mktemp("runs")
    return [trained_run(root, "fast", 0.5), trained_run(root, "slow", 0.01)]


def test_the_default_figure_draws_each_run_s_losses_and_monitored_metric_as_metrics_csv_holds_them(two_runs):
    fig = draw([str(run) for run in two_runs])
    loss_axes, monitor_axes = fig.axes
    assert (loss_axes.get_title(), monitor_axes.get_title()) == ("loss", "val/acc")
    expected = {
        f"{run.parent.name} {metric}": csv_series(run, metric)
        for run in two_runs
        for metric in ("train/batch_loss", "train/loss", "val/loss")
    }
    assert lines(loss_axes) == expected
    fast_steps, _ = expected["fast train/batch_loss"]
    assert fast_steps == [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0]  # a step row every step
    assert expected["fast val/loss"][0] == [3.0, 6.0, 9.0]  # an epoch row at each epoch's last step
    assert lines(monitor_axes) == {f"{run.parent.name} val/acc": csv_series(run, "val/acc") for run in two_runs}
    assert {line.get_label(): line.get_color() for line in loss_axes.lines} == {
        label: "C0" if label.startswith("fast") else "C1" for label in expected
    }  # a colour per run


def test_a_monitored_loss_is_drawn_once_with_the_losses(tmp_path):
    run = trained_run(tmp_path, "watched", 0.5, monitor="val/loss")
    fig = draw([str(run)])
    assert [axes.get_title() for axes in fig.axes] == ["loss"]
    assert sorted(lines(fig.axes[0])) == ["watched train/batch_loss", "watched train/loss", "watched val/loss"]
    assert {line.get_color() for line in fig.axes[0].lines} == {"C0"}  # one run: a colour per quantity, here the loss


def test_metric_draws_that_one_metric_for_every_run(two_runs):
    fig = draw([str(run) for run in two_runs], metric="train/loss")
    (axes,) = fig.axes
    assert lines(axes) == {f"{run.parent.name} train/loss": csv_series(run, "train/loss") for run in two_runs}


def test_runs_of_one_experiment_are_told_apart_by_their_run_id(tmp_path):
    first = trained_run(tmp_path / "a", "same", 0.5)
    second = trained_run(tmp_path / "b", "same", 0.1)
    second = second.rename(second.parent / "20260101-000001-fedcba")
    fig = draw([str(first), str(second)], metric="val/loss")
    assert sorted(lines(fig.axes[0])) == [
        "same/20260101-000000-abcdef val/loss",
        "same/20260101-000001-fedcba val/loss",
    ]


def test_the_command_writes_a_png_of_that_figure(two_runs, tmp_path, capsys):
    output = tmp_path / "out.png"
    assert main(["plot", *map(str, two_runs), "--output", str(output)]) == 0
    assert capsys.readouterr().out == f"written: {output}\n"
    assert output.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    import matplotlib.image

    assert matplotlib.image.imread(output).shape == (480, 1280, 4)  # two panels of 6.4 x 4.8 inches at 100 dpi


def test_an_unknown_metric_is_exit_2_naming_it_and_the_run_s_metrics(two_runs, capsys):
    assert main(["plot", str(two_runs[0]), "--metric", "val/f1"]) == 2
    columns = ", ".join(read_history(two_runs[0] / "metrics.csv", "fast").columns)
    assert columns == "train/batch_loss, train/loss, train/acc, val/loss, val/acc"
    assert capsys.readouterr().err == (
        f"expresso: error: --metric val/f1: fast logged no such metric; its metrics: {columns}\n"
    )


@pytest.mark.parametrize(
    "args, message",
    [
        (["--output", "curves.jpg"], "--output curves.jpg: expected a file name ending in .png, .pdf, .svg"),
        (["--output", "curves"], "--output curves: expected a file name ending in .png, .pdf, .svg"),
    ],
)
def test_an_output_that_names_no_picture_format_is_exit_2(two_runs, capsys, args, message):
    assert main(["plot", str(two_runs[0]), *args]) == 2
    assert capsys.readouterr().err == f"expresso: error: {message}\n"


def test_a_folder_that_is_no_run_or_a_run_without_metrics_is_exit_2_naming_it(tmp_path, two_runs, capsys):
    assert main(["plot", str(tmp_path), "--output", str(tmp_path / "x.png")]) == 2
    assert capsys.readouterr().err == f"expresso: error: {tmp_path}: not a run folder (missing config.yaml, run.json)\n"
    bare = Path(shutil.copytree(two_runs[0], tmp_path / "bare"))
    (bare / "metrics.csv").unlink()
    assert main(["plot", str(bare), "--output", str(tmp_path / "x.png")]) == 2
    assert capsys.readouterr().err == (
        f"expresso: error: {bare / 'metrics.csv'}: not found (the run logged no row, or its loggers leave out csv)\n"
    )
    assert not (tmp_path / "x.png").exists()


def test_without_matplotlib_the_command_is_exit_2_with_the_install_command(two_runs, monkeypatch, capsys, tmp_path):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # Python's mark of a module that cannot be imported
    assert main(["plot", str(two_runs[0]), "--output", str(tmp_path / "x.png")]) == 2
    assert capsys.readouterr().err == (
        "expresso: error: expresso plot needs the matplotlib package, which is not installed:"
        " pip install torch-expresso[plots]\n"
    )


def test_one_run_s_loss_terms_get_a_colour_each_shared_by_their_train_and_val_lines():
    row = {"epoch": 1.0, "step": 5.0, "train/loss/real": 0.7, "val/loss/real": 0.6, "train/loss/fake": 0.5}
    run = RunHistory("gan", ("train/loss/real", "val/loss/real", "train/loss/fake"), (row,))
    (axes,) = figure([run]).axes
    assert {line.get_label(): line.get_color() for line in axes.lines} == {
        "gan train/loss/real": "C0",
        "gan val/loss/real": "C0",
        "gan train/loss/fake": "C1",
    }
