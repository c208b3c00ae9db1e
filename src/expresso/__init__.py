"""expresso: configurable experiments for PyTorch.

Importing this package imports no torch: the config layer stays fast, and the
engine's names load on first use. ``Trainer`` is the engine's with the
callbacks every run gets (``expresso.engine.Trainer`` runs only those given).
"""

from .config import Config, ConfigError, instantiate, load_config
from .errors import BadInput
from .version import __version__

# The engine's names a user builds a run from, raises in a callback, or subclasses; they import torch on first use.
_ENGINE = (
    "Callback",
    "Event",
    "Every",
    "Graph",
    "LossTerm",
    "Node",
    "OptimizerSpec",
    "Pipeline",
    "Rollback",
    "SkipBatch",
    "Stage",
    "State",
    "Stop",
    "StopEpoch",
    "StopTraining",
    "Until",
)
# Run analysis: pandas DataFrames of run folders (the `analysis` extra); pandas loads on first use.
_ANALYSIS = ("load_runs", "load_history", "load_C", "load_H")
__all__ = [
    "BadInput",
    "Config",
    "ConfigError",
    "Trainer",
    "__version__",
    "instantiate",
    "load_config",
    *_ENGINE,
    *_ANALYSIS,
]


def __getattr__(name: str):
    """The engine's names import torch and the analysis names pandas, so they load on first use."""
    if name == "Trainer":
        from .assembly.trainer import Trainer

        return Trainer
    if name in _ENGINE:
        from . import engine

        return getattr(engine, name)
    if name in _ANALYSIS:
        from .analysis import frames

        return getattr(frames, name)
    raise AttributeError(f"module 'expresso' has no attribute {name!r}")
