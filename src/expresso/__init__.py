"""expresso: configurable experiments for PyTorch.

Importing this package imports no torch: the config layer stays fast, and the
engine's names load on first use.
"""

from .config import Config, ConfigError, instantiate, load_config

__version__ = "0.1.0"
__all__ = ["Config", "ConfigError", "__version__", "instantiate", "load_config"]
