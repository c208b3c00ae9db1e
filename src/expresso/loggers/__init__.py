"""Loggers: where a run's values go besides metrics.csv (trackers such as TensorBoard or MLflow subclass ``Logger``).

``loggers:`` in a config lists ``csv`` (metrics.csv, the default) and
components whose class subclasses ``Logger``; anything else is refused at
``--check``.
"""

from .base import Logger

__all__ = ["Logger"]
