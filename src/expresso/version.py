"""The package version: the one place it is written (pyproject.toml reads it from here).

A leaf module so any layer can report the version without importing the
package's ``__init__`` (which would make a lower layer import an upper one).
"""

__version__ = "0.1.0"
