"""Loggers: where a run's values go besides metrics.csv (trackers subclass ``Logger``).

``loggers:`` in a config lists short names (``csv``: metrics.csv, the
default; ``tensorboard``; ``mlflow``; ``clearml``; ``sacred``; ``comet``; ``wandb``) and components whose class subclasses
``Logger``; anything else is refused at ``--check``, and so is a tracker
whose extra is not installed. Each tracker imports its library only when a
run starts.
"""

from .base import Logger
from .clearml import ClearMLLogger
from .comet import CometLogger
from .mlflow import MLflowLogger
from .sacred import SacredLogger
from .tensorboard import TensorBoardLogger
from .wandb import WandbLogger

__all__ = ["ClearMLLogger", "CometLogger", "Logger", "MLflowLogger", "SacredLogger", "TensorBoardLogger", "WandbLogger"]
