"""The one place that knows the config's sections: from a checked config to the objects it describes.

config (torch-free: files in, a checked tree out) <- assembly <- commands.
Here the sections become objects: the general form of the graph sections
(config/wiring.py) turns into models, a graph, optimizers, pipelines and
stages (assemble.py); datasets, metrics, callbacks, loggers, schedulers and
the ``step`` are built and a ``Trainer`` made (build.py). The checks that
need torch run here too (checks.py): the device, and the graph's wiring and
monitored names with placeholder models (placeholder.py, monitored.py).
"""

from .build import build_trainer, resolve_init_from
from .checks import check

__all__ = ["build_trainer", "check", "resolve_init_from"]
