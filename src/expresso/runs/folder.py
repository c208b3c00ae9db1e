"""Creating a run folder: ``<runs_root>/<experiment name>/<run id>/``.

The run id is a sortable timestamp plus a short random suffix, and the folder
is created with ``exist_ok=False``: two runs started in the same second (or
by eight processes at once) never share a folder.
"""

from __future__ import annotations

import re
import secrets
import time
from pathlib import Path

CONFIG_FILE, RECORD_FILE, HISTORY_FILE, LOG_FILE, CHECKPOINTS = (
    "config.yaml",
    "run.json",
    "metrics.csv",
    "log.txt",
    "checkpoints",
)


def safe_name(name: str) -> str:
    """An experiment name usable as a folder name."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-.") or "experiment"


def plan_run_dir(runs_root: Path, name: str) -> Path:
    """A fresh run folder path (not yet created)."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    while True:
        path = Path(runs_root) / safe_name(name) / f"{stamp}-{secrets.token_hex(3)}"
        if not path.exists():
            return path


def create_run_dir(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.mkdir(exist_ok=False)
    (path / CHECKPOINTS).mkdir()
    return path
