"""The config system: files -> one validated, resolved tree -> live objects.

``load_config`` and ``instantiate`` are the whole public surface; the CLI's
``expresso config`` and the engine use exactly these.
"""

from .errors import ConfigError, Problem
from .instantiate import instantiate
from .loader import Config, load_config

__all__ = ["Config", "ConfigError", "Problem", "instantiate", "load_config"]
