"""Run every benchmark in one process session."""

from . import cli_startup

cli_startup.main()
