"""``BadInput``: the one kind of error that means "fix what you gave", whichever layer finds it.

A config key, a command-line argument, a run folder, a checkpoint or a
weights file the user named can be wrong; the CLI answers each with one line
and exit status 2 (``--debug``: the traceback), and it recognises them by
this base alone. This module imports nothing, torch included, so every layer
(config, engine, runs, commands) can derive from it without an import cycle.

A run that fails while it trains (a diverging loss, a model whose outputs do
not match its graph node, a disk that fills) is not bad input: it fails the
run, which records the error and exits 1 (a diverging loss and a full disk
in one line, anything else with its traceback).
"""

from __future__ import annotations


class BadInput(Exception):
    """An error the user fixes by changing their input; its message is the whole story, so no traceback is shown."""
