"""The CLI's commands: one module per command, each with its parser and its handler.

A command module has ``add_parser(subparsers, common)``, which adds its
subcommand (``common`` holds the options every command takes) and returns
it, and ``run(args) -> int``, which runs it and returns the exit status;
cli.py lists the modules. A module imports only the standard library at its
top and torch only inside ``run``, so ``expresso --help`` and
``expresso config`` load none. Helpers shared by commands live beside them
(session.py, trained.py, inputs.py, resume_changes.py,
tracking.py).
"""

from ..errors import BadInput


class UsageError(BadInput, ValueError):
    """Bad command-line input that is not a config problem (a missing run folder, say): exit 2."""
