"""expresso: configurable experiments for PyTorch.

Importing this package imports no torch: the config layer stays fast, and the
engine's names load on first use.
"""

from .config import Config, ConfigError, instantiate, load_config
from .version import __version__

__all__ = ["Callback", "Config", "ConfigError", "State", "Trainer", "__version__", "instantiate", "load_config"]
_ENGINE = ("Callback", "State", "Trainer")


def __getattr__(name: str):
    """The engine's names import torch, so they load on first use."""
    if name in _ENGINE:
        from . import engine

        return getattr(engine, name)
    raise AttributeError(f"module 'expresso' has no attribute {name!r}")
