"""curves.png: the run's learning curves, drawn once from metrics.csv when the fit ends.

The same figure as ``expresso plot RUN`` (runs/curves.py draws both), left
in the run folder for people who run no tracker. It is drawn once, from
the rows read after the fit's last one is written (``order`` after
History's flush at ``FIT_END``), on a thread of its own: drawing takes
matplotlib about 0.4 s on 2 cores, a quarter of the digits MLP's whole fit,
so the fit returns without waiting and the final evaluation runs beside it.
The thread is not a daemon: the process ends once the file is written;
``wait()`` (and the next fit's start) waits for it. Without matplotlib (the
``plots`` extra) nothing is drawn, nor when every metric has a single
point (a ``--dev-run``: there is no curve to see), and a figure that cannot be drawn is a
warning, never a failed run: the run's record is metrics.csv, not its
picture.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

from ..config.loggers import missing_extra
from ..engine.callback import Callback
from ..engine.state import State
from ..runs.curves import figure, read_history, save
from ..runs.folder import RunFolder

log = logging.getLogger("expresso")


class LearningCurves(Callback):
    """Draws metrics.csv's curves into the run folder's curves.png when the fit ends (with matplotlib installed).

    Args:
        monitor: the metric of the second panel beside the losses (the run's ``trainer.monitor``).
        metric: draw this one metric instead (None: the losses and ``monitor``).
    """

    rank_zero_only = True  # it writes: rank 0 alone runs it (engine/distributed.py)

    order = 1000  # after History wrote the fit's last rows at FIT_END
    phases = ("fit",)

    def __init__(self, monitor: str | None = "val/loss", metric: str | None = None):
        self.monitor, self.metric = monitor, metric
        self._drawing: threading.Thread | None = None

    def on_fit_start(self, state: State) -> None:
        self.wait()  # the previous fit's figure is written before this fit adds rows

    def on_fit_end(self, state: State) -> None:
        if state.run_dir is None or missing_extra("matplotlib", "plots", RunFolder.CURVES):
            return
        folder = RunFolder(state.run_dir)
        try:
            history = read_history(folder.history, folder.path.parent.name, self.monitor)
        except Exception as exc:  # a picture is never worth a failed run
            self._warn(folder.curves, exc)
            return
        if not any(len(history.series(name)[0]) > 1 for name in history.columns):
            return  # one point per metric (a --dev-run, a single short epoch): no curve, and ~0.2 s saved
        self._drawing = threading.Thread(target=self._draw, args=(history, folder.curves), name="expresso-curves")
        self._drawing.start()

    def wait(self) -> None:
        """Return once curves.png of the last fit is written (or its drawing failed, with a warning)."""
        if self._drawing is not None:
            self._drawing.join()
            self._drawing = None

    def _draw(self, history: Any, path: Path) -> None:
        try:
            save(figure([history], self.metric), path)
        except Exception as exc:
            self._warn(path, exc)

    @staticmethod
    def _warn(path: Path, exc: Exception) -> None:
        log.warning("expresso: warning: %s was not drawn: %s: %s", path, type(exc).__name__, exc)
