"""Built-in callbacks: everything the training loop does beyond forward, backward and step.

Each lives in its own file with its test beside it in tests/unit/callbacks.
``MetricWatcher`` is the base of those that watch a metric (``Checkpoint``,
``EarlyStopping``): subclass it for a callback of your own that acts on a
monitored value. ``RecordSummary`` and ``Preemption`` are what ``expresso
train`` and ``resume`` add to every run (run.json's summary; a checkpoint and
exit 75 on SIGTERM/SIGUSR1). ``SystemMonitor`` logs CPU, memory, disk and GPU
use (the ``monitor`` extra).
"""

from ..engine.finite import NonFiniteLossError
from .checkpoint import Checkpoint
from .early_stopping import EarlyStopping
from .history import History
from .image_grid import ImageGrid
from .learning_curves import LearningCurves
from .lr_schedule import LRScheduler
from .metric_watcher import MetricWatcher
from .model_summary import ModelSummary
from .nan_guard import NaNGuard
from .preemption import Preempted, Preemption
from .progress import Progress
from .record_summary import RecordSummary
from .system_monitor import SystemMonitor

__all__ = [
    "Checkpoint",
    "EarlyStopping",
    "History",
    "ImageGrid",
    "LRScheduler",
    "LearningCurves",
    "MetricWatcher",
    "ModelSummary",
    "NaNGuard",
    "NonFiniteLossError",
    "Preempted",
    "Preemption",
    "Progress",
    "RecordSummary",
    "SystemMonitor",
]
