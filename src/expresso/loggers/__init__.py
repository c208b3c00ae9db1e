"""Loggers: where a run's values go besides metrics.csv (trackers subclass ``Logger``).

``loggers:`` in a config lists short names (``csv``: metrics.csv, the
default; ``tensorboard``; ``mlflow``; ``comet``; ``wandb``) and components whose class subclasses
``Logger``; anything else is refused at ``--check``, and so is a tracker
whose extra is not installed. Each tracker imports its library only when a
run starts.
"""

from .base import Logger
from .comet import CometLogger
from .mlflow import MLflowLogger
from .tensorboard import TensorBoardLogger
from .wandb import WandbLogger

__all__ = ["CometLogger", "Logger", "MLflowLogger", "TensorBoardLogger", "WandbLogger"]
