"""The one place that turns the config's sections into objects: from a checked config to a ready Trainer.

Layers: config (torch-free: files in, a checked tree and the general form of
its graph sections out) <- assembly <- commands. Here, and nowhere else, the
sections become objects: the typed general form (``Config.wiring``) turns
into models, a graph, optimizers, pipelines and stages (assemble.py);
datasets, metrics, callbacks, loggers, schedulers and the ``step`` are built
and a ``Trainer`` made (build.py). The checks that need torch run here too
(checks.py): the device, and the graph's wiring and monitored names with
placeholder models (placeholder.py, monitored.py).
"""

from .build import build_trainer, resolve_init_from
from .checks import check

__all__ = ["build_trainer", "check", "resolve_init_from"]
