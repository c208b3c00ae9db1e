"""The CLI's commands, one module per concern; each imports torch only when it runs."""

from ..errors import BadInput


class UsageError(BadInput, ValueError):
    """Bad command-line input that is not a config problem (a missing run folder, say): exit 2."""
