"""What a run ran on: the versions of Python, expresso and the libraries that decide its numbers.

Kept in the engine (which imports torch anyway) so the run folder's record
stays torch-free: the command that starts a run passes these to it.
"""

from __future__ import annotations

import platform

import numpy
import torch
import torchmetrics

from ..version import __version__


def versions() -> dict[str, str]:
    """Python, expresso, torch, numpy and torchmetrics versions, as run.json records them."""
    return {
        "python": platform.python_version(),
        "expresso": __version__,
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "torchmetrics": torchmetrics.__version__,
    }
