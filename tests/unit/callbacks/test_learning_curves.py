"""curves.png at the fit's end: drawn from the run's metrics.csv once, never a reason for a run to fail."""

from __future__ import annotations

import logging
import sys

import matplotlib.image
import torchmetrics

from expresso.callbacks import History, LearningCurves
from expresso.callbacks.defaults import with_defaults
from expresso.engine import Callback

PNG = b"\x89PNG\r\n\x1a\n"


def accuracy():
    return {"acc": torchmetrics.classification.MulticlassAccuracy(num_classes=2, average="micro")}


def test_the_fit_leaves_a_png_of_the_losses_and_the_monitored_metric(make_trainer, tmp_path):
    run_dir, drawer = tmp_path / "exp" / "run", LearningCurves(monitor="val/acc")
    make_trainer(History(), drawer, max_epochs=2, metrics=accuracy(), run_dir=run_dir).fit()
    drawer.wait()  # drawn beside what follows the fit (the final evaluation)
    curves = run_dir / "curves.png"
    assert curves.read_bytes()[:8] == PNG
    assert matplotlib.image.imread(curves).shape == (480, 1280, 4)  # two panels: the losses, val/acc


def test_it_is_drawn_once_the_fit_is_over_not_during_it(make_trainer, tmp_path):
    seen = []

    class Look(Callback):
        def on_epoch_checkpoint(self, state) -> None:
            seen.append((state.run_dir / "curves.png").exists())

    run_dir, drawer = tmp_path / "exp" / "run", LearningCurves()
    make_trainer(History(), drawer, Look(), max_epochs=2, run_dir=run_dir).fit()
    drawer.wait()
    assert seen == [False, False] and (run_dir / "curves.png").is_file()


def test_a_figure_whose_drawing_process_fails_is_a_warning_naming_its_error(make_trainer, tmp_path, caplog):
    run_dir, drawer = tmp_path / "exp" / "run", LearningCurves()
    (run_dir / "curves.png").mkdir(parents=True)  # the picture cannot replace a folder
    with caplog.at_level(logging.WARNING, logger="expresso"):
        make_trainer(History(), drawer, max_epochs=2, run_dir=run_dir).fit()
        drawer.wait()
    [message] = [record.getMessage() for record in caplog.records]
    assert message.startswith(f"expresso: warning: {run_dir / 'curves.png'} was not drawn: IsADirectoryError: ")


def test_the_figure_is_drawn_by_a_process_of_its_own(make_trainer, tmp_path, monkeypatch):
    """matplotlib never loads in the training process: neither its memory nor its hold on the GIL are the fit's."""
    run_dir, drawer = tmp_path / "exp" / "run", LearningCurves()
    for name in [name for name in sys.modules if name == "matplotlib" or name.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, name)  # imported by this test module; the fit must not import it again
    make_trainer(History(), drawer, max_epochs=2, run_dir=run_dir).fit()
    drawer.wait()
    assert (run_dir / "curves.png").read_bytes()[:8] == PNG and "matplotlib" not in sys.modules


def test_a_figure_that_cannot_be_drawn_is_a_warning_and_the_fit_completes(make_trainer, tmp_path, caplog):
    run_dir = tmp_path / "exp" / "run"
    with caplog.at_level(logging.WARNING, logger="expresso"):
        make_trainer(LearningCurves(), max_epochs=1, run_dir=run_dir).fit()  # no History: no metrics.csv
    assert [record.getMessage() for record in caplog.records] == [
        f"expresso: warning: {run_dir / 'curves.png'} was not drawn: HistoryError: {run_dir / 'metrics.csv'}:"
        " not found (the run logged no row, or its loggers leave out csv)"
    ]
    assert not (run_dir / "curves.png").exists()


def test_without_matplotlib_nothing_is_drawn_and_nothing_is_said(make_trainer, tmp_path, monkeypatch, caplog):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    run_dir = tmp_path / "exp" / "run"
    with caplog.at_level(logging.WARNING, logger="expresso"):
        make_trainer(History(), LearningCurves(), max_epochs=2, run_dir=run_dir).fit()
    assert caplog.records == [] and (run_dir / "metrics.csv").is_file() and not (run_dir / "curves.png").exists()


def test_a_fit_whose_metrics_have_one_point_each_draws_nothing_and_a_second_epoch_draws_them(make_trainer, tmp_path):
    run_dir = tmp_path / "exp" / "run"
    make_trainer(History(), LearningCurves(), max_epochs=1, run_dir=run_dir).fit()  # one epoch row, no step row
    assert (run_dir / "metrics.csv").is_file() and not (run_dir / "curves.png").exists()
    drawer = LearningCurves()
    make_trainer(History(), drawer, max_epochs=2, run_dir=tmp_path / "exp" / "two").fit()
    drawer.wait()
    assert (tmp_path / "exp" / "two" / "curves.png").read_bytes().startswith(b"\x89PNG")


def test_the_defaults_draw_the_curves_of_the_csv_logger_with_the_run_s_monitor():
    callbacks = with_defaults([], monitor="val/acc")
    (curves,) = [callback for callback in callbacks if isinstance(callback, LearningCurves)]
    assert curves.monitor == "val/acc" and curves.metric is None
    assert callbacks.index(curves) > [type(callback) for callback in callbacks].index(History)
    assert not any(isinstance(callback, LearningCurves) for callback in with_defaults([], history=False))


def test_an_error_of_the_drawing_process_is_named_as_this_process_names_its_own(make_trainer, tmp_path, caplog):
    """The child's HistoryError reads as the parent's would: no module path before the class name."""
    run_dir, drawer = tmp_path / "exp" / "run", LearningCurves(metric="val/nope")
    with caplog.at_level(logging.WARNING, logger="expresso"):
        make_trainer(History(), drawer, max_epochs=2, run_dir=run_dir).fit()
        drawer.wait()
    [message] = [record.getMessage() for record in caplog.records]
    assert message.startswith(
        f"expresso: warning: {run_dir / 'curves.png'} was not drawn: HistoryError: --metric val/nope: "
    )
