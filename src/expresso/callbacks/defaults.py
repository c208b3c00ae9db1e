"""The callbacks every run gets unless told otherwise: one list for `expresso train` and the Python API.

Keras's ``fit()`` shows progress and returns a history; Lightning's ``Trainer``
prints a model summary, a progress bar and checkpoints. expresso does the
same from both doors: a config build (assembly/build.py) and
``expresso.Trainer`` (assembly/trainer.py) call ``with_defaults``, so a run
started from Python records what a run started from a config records.
"""

from __future__ import annotations

from collections.abc import Iterable

from ..engine.callback import Callback
from .checkpoint import Checkpoint
from .history import History
from .learning_curves import LearningCurves
from .model_summary import ModelSummary
from .progress import Progress


def with_defaults(
    callbacks: Iterable[Callback],
    *,
    monitor: str = "val/loss",
    mode: str = "min",
    log_every_n_steps: int = 50,
    history: bool = True,
    checkpoints: bool = True,
) -> list[Callback]:
    """The default callbacks, then ``callbacks``; a given callback of a default's class replaces that default.

    The defaults: ``ModelSummary``, ``Progress``, ``Checkpoint(monitor, mode)``
    (unless ``checkpoints`` is false) and ``History(log_every_n_steps)`` (the
    ``csv`` logger, unless ``history`` is false) with ``LearningCurves(monitor)``
    (curves.png from metrics.csv at the fit's end, where matplotlib is
    installed). Those that write files need a run folder.
    """
    given = list(callbacks)
    defaults: list[Callback] = [ModelSummary(), Progress()]
    if checkpoints:
        defaults.append(Checkpoint(monitor=monitor, mode=mode))
    if history:
        defaults += [History(log_every_n_steps=log_every_n_steps), LearningCurves(monitor=monitor)]
    replaced = {type(callback) for callback in given}
    return [callback for callback in defaults if type(callback) not in replaced] + given
