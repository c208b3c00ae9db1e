"""What goes wrong with a checkpoint file, as the commands report it."""

from __future__ import annotations

from ...errors import BadInput


class CheckpointError(BadInput, ValueError):
    """A checkpoint that cannot be read, is not an expresso checkpoint, or does not match its recorded entries."""


class CheckpointWriteError(OSError):
    """A checkpoint could not be written (disk full, permissions); the previous one, if there was one, is intact."""
