"""``expresso.Trainer``: the engine's Trainer with the callbacks `expresso train` gives every run.

The engine's ``Trainer`` (``expresso.engine.Trainer``) runs exactly the
callbacks it is given: the loop knows no callback by name. A user of the
Python API expects what Keras's ``fit()`` and Lightning's ``Trainer`` give
without asking, and what a config run gets: a model summary and progress
lines, and with a ``run_dir`` the history (metrics.csv) and checkpoints
(last, best by ``settings.monitor``/``mode``). This class adds them
(callbacks/defaults.py, the list the config build uses too).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ..callbacks.defaults import with_defaults
from ..engine.callback import Callback
from ..engine.trainer import Trainer as EngineTrainer
from ..settings import TrainerConfig, from_mapping


class Trainer(EngineTrainer):
    """Trains a model or a graph as ``expresso.engine.Trainer`` does, with the default callbacks of every run.

    Args:
        callbacks: your callbacks; one of a default's class (a ``Checkpoint``
            with another ``dirpath``, a ``Progress`` of your own) replaces
            that default.
        default_callbacks: False runs only ``callbacks`` (the engine's Trainer).
        **kwargs: everything ``expresso.engine.Trainer`` takes (``model``,
            ``loss``, ``optimizer``, data, ``settings``, ``run_dir``...).
            Without ``run_dir`` nothing is written: progress and the model
            summary only, no history file and no checkpoints.
    """

    def __init__(self, *, callbacks: Iterable[Callback] = (), default_callbacks: bool = True, **kwargs: Any):
        if default_callbacks:
            settings = from_mapping(TrainerConfig, kwargs.get("settings"))
            writes = kwargs.get("run_dir") is not None
            callbacks = with_defaults(
                callbacks,
                monitor=settings.monitor,
                mode=settings.mode,
                log_every_n_steps=settings.log_every_n_steps,
                history=writes,
                checkpoints=writes,
            )
        super().__init__(callbacks=callbacks, **kwargs)
