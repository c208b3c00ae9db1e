"""curves.png: the run's learning curves, drawn once from metrics.csv when the fit ends.

The same figure as ``expresso plot RUN`` (runs/curves.py draws both), left
in the run folder for people who run no tracker. It is drawn once, from
metrics.csv as it stands after the fit's last row is written (``order``
after History's flush at ``FIT_END``), by a Python process of its own: the
fit returns without waiting and the final evaluation runs beside it. Drawn
in this process (on a thread, as before) matplotlib took about 0.6 s and
36 MB of the training process's peak memory, and its thread held the GIL
against the final evaluation, which took 0.94 s instead of 0.5 s on the
2-core machine (the benchmark's job case); the child pays its own start
(about 0.1 s) on the other core. A thread that is not a daemon waits for the
child, so the process ends once the file is written; ``wait()`` (and the
next fit's start) waits for it too. Without matplotlib (the ``plots`` extra)
nothing is drawn, nor when every metric has a single point (a
``--dev-run``: there is no curve to see), and a figure that cannot be drawn
is a warning, never a failed run: the run's record is metrics.csv, not its
picture.
"""

from __future__ import annotations

import logging
import subprocess
import sys
import threading
from pathlib import Path

from ..config.loggers import missing_extra
from ..engine.callback import Callback
from ..engine.state import State
from ..runs.curves import read_history
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
        command = [
            *_DRAW,
            str(folder.history),
            history.label,
            self.monitor or "",
            self.metric or "",
            str(folder.curves),
        ]
        self._drawing = threading.Thread(target=self._draw, args=(command, folder.curves), name="expresso-curves")
        self._drawing.start()

    def wait(self) -> None:
        """Return once curves.png of the last fit is written (or its drawing failed, with a warning)."""
        if self._drawing is not None:
            self._drawing.join()
            self._drawing = None

    def _draw(self, command: list[str], path: Path) -> None:
        try:
            done = subprocess.run(command, capture_output=True, text=True, check=False)
        except OSError as exc:  # no interpreter to start (a frozen application, a process limit)
            self._warn(path, exc)
            return
        if done.returncode != 0:  # runs/curves.py's main says its error in one last line: "OSError: ..."
            lines = done.stderr.strip().splitlines()
            log.warning(_NOT_DRAWN, path, lines[-1] if lines else f"the drawing process exited {done.returncode}")

    @staticmethod
    def _warn(path: Path, exc: Exception) -> None:
        log.warning(_NOT_DRAWN, path, f"{type(exc).__name__}: {exc}")


_NOT_DRAWN = "expresso: warning: %s was not drawn: %s"
# The drawing process: this interpreter, and this expresso (its folder is searched last, after the usual places).
_DRAW = [
    sys.executable,
    "-c",
    "import sys; sys.path.append(sys.argv.pop(1)); from expresso.runs.curves import main; main(sys.argv[1:])",
    str(Path(__file__).resolve().parents[2]),
]
