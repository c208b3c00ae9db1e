"""curves.png: the run's learning curves, drawn once from metrics.csv when the fit ends.

The same figure as ``expresso plot RUN`` (runs/curves.py draws both), left
in the run folder for people who run no tracker. It is drawn once, after
the fit's last row is written (``order`` after History's flush at
``FIT_END``), so training never waits for it; without matplotlib (the
``plots`` extra) nothing is drawn, nor when every metric has a single
point (a ``--dev-run``: there is no curve to see), and a figure that cannot be drawn is a
warning, never a failed run: the run's record is metrics.csv, not its
picture.
"""

from __future__ import annotations

import logging

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

    def on_fit_end(self, state: State) -> None:
        if state.run_dir is None or missing_extra("matplotlib", "plots", RunFolder.CURVES):
            return
        folder = RunFolder(state.run_dir)
        try:
            history = read_history(folder.history, folder.path.parent.name, self.monitor)
            if not any(len(history.series(name)[0]) > 1 for name in history.columns):
                return  # one point per metric (a --dev-run, a single short epoch): no curve, and ~0.2 s saved
            save(figure([history], self.metric), folder.curves)
        except Exception as exc:  # a picture is never worth a failed run
            log.warning("expresso: warning: %s was not drawn: %s: %s", folder.curves, type(exc).__name__, exc)
