"""Built-in callbacks: everything the training loop does beyond forward, backward and step.

Each lives in its own file with its test beside it in tests/unit/callbacks.
"""

from .checkpoint import Checkpoint
from .early_stopping import EarlyStopping
from .history import History
from .image_grid import ImageGrid
from .lr_schedule import LRScheduler
from .metric_watcher import MetricWatcher
from .model_summary import ModelSummary
from .nan_guard import NaNGuard, NonFiniteLossError
from .progress import Progress

__all__ = [
    "Checkpoint",
    "EarlyStopping",
    "History",
    "ImageGrid",
    "LRScheduler",
    "MetricWatcher",
    "ModelSummary",
    "NaNGuard",
    "NonFiniteLossError",
    "Progress",
]
