"""Write checkpoints atomically and read them safely.

A checkpoint is written to a temporary file in the same folder, flushed and
fsynced, then renamed over the old one (and the folder fsynced): a crash at
any moment leaves either the old file or the new one, never half of one.
Reading uses ``weights_only=True``: a checkpoint cannot run code.

``BackgroundWriter`` takes a snapshot (every tensor cloned, so later steps
cannot change it) and writes it on one background thread, at most one write
in flight; a failed write is raised at the next save or wait. The Trainer does
not use it yet: a fresh-clone run of the SIGKILL resume test once diverged
with it (not reproduced in three further runs), so the Trainer writes on its
own thread until that is understood. The benchmarks measure both writers.
"""

from __future__ import annotations

import os
import tempfile
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable

import torch

FORMAT = "expresso-checkpoint"
VERSION = 1


class CheckpointError(ValueError):
    """A checkpoint that cannot be read, or is not an expresso checkpoint."""


def save_atomic(payload: dict[str, Any], path: Path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            torch.save({"format": FORMAT, "version": VERSION, **payload}, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_folder(path.parent)


def _fsync_folder(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # some platforms cannot open folders
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def load_checkpoint(path: Path, map_location: Any = "cpu") -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint not found")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"{path}: not a readable checkpoint ({first})") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not an expresso checkpoint (no '{FORMAT}' marker)")
    return payload


def snapshot(value: Any) -> Any:
    """A deep copy in which every tensor is cloned: what a checkpoint holds at the moment it was taken."""
    if isinstance(value, torch.Tensor):
        return value.detach().clone()
    if isinstance(value, dict):
        return {key: snapshot(item) for key, item in value.items()}
    if isinstance(value, list):
        return [snapshot(item) for item in value]
    if isinstance(value, tuple):
        return tuple(snapshot(item) for item in value)
    return value


class BackgroundWriter:
    """Writes checkpoints on one long-lived thread; ``wait()`` returns when the last one is on disk."""

    # Parts of a payload that refer to live tensors (weights, optimizer and metric states, callbacks);
    # the rest (RNG states, counters, config) is built fresh for each payload and needs no copy.
    LIVE = ("models", "optimizers", "callbacks", "train_metrics", "grad_scaler")

    def __init__(self) -> None:
        self._pool: ThreadPoolExecutor | None = None
        self._pending: Future | None = None

    def submit(self, payload: dict[str, Any], path: Path, then: Callable[[], None] | None = None) -> None:
        self.wait()
        payload = {key: snapshot(value) if key in self.LIVE else value for key, value in payload.items()}

        def write() -> None:
            save_atomic(payload, path)
            if then is not None:
                then()

        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="expresso-checkpoint")
        self._pending = self._pool.submit(write)

    def wait(self) -> None:
        """Block until the last write is done; raise its error, once, if it failed."""
        pending, self._pending = self._pending, None
        if pending is not None:
            pending.result()
