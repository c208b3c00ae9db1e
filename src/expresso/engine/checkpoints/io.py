"""A checkpoint file: written atomically and durably, read safely.

A checkpoint is streamed by ``torch.save`` into a temporary file in the same
folder, then renamed over the old one (``expresso.runs.atomic``): a process
killed at any moment leaves either the old file or the new one, never half
of one. The manifest records the new bytes before the rename (manifest.py
says why). Reading uses ``weights_only=True``: a checkpoint cannot run code.

The bytes are written on the checkpoint writer thread (writer.py; the
training thread hands over a copy of the state); their fsyncs (the file's and
the folder's, 5-10 ms each on a busy disk) are done on a second background
thread (``later``), and each write first waits for the previous one's: the
file a write turns into ``previous.ckpt`` is durable before it is replaced, so
an operating-system crash loses at most the newest checkpoint (resume then
finds it damaged and falls back).
"""

from __future__ import annotations

import hashlib
import os
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

import torch

from ...runs import fault_points
from ...runs.atomic import atomic_copy, atomic_file, wait_for_syncs
from ...runs.fault_points import reached
from .errors import CheckpointError, CheckpointWriteError
from .manifest import verify

FORMAT = "expresso-checkpoint"
VERSION = 1


PAUSE_ENV = "EXPRESSO_TEST_PAUSE_DURING_WRITE"  # test hook "N:MARKER": in the N-th write, after its first bytes, touch MARKER and sleep
_writes = 0  # atomic writes started by this process (for the test hook)


def save_atomic(
    payload: dict[str, Any],
    path: Path,
    *,
    before_replace: Callable[[dict], None] | None = None,
    previous: Path | None = None,
) -> dict[str, Any]:
    """Serialize straight into the temporary file (no copy in memory); returns its size and sha256.

    ``before_replace(entry)`` runs once the bytes are written, before the
    rename (the manifest records them there, see manifest.py); with
    ``previous``, the file being replaced stays there under that name. A
    failure (a full disk, a permission error) raises ``CheckpointWriteError``
    and leaves the file at ``path`` untouched (or absent, as it was), and no
    temporary file.
    """
    path = Path(path)
    try:
        wait_for_syncs()  # the previous write's fsyncs: what this one turns into previous.ckpt must be durable
    except OSError as exc:
        raise CheckpointWriteError(
            f"{path}: the previous checkpoint could not be made durable ({exc.strerror or exc})"
        ) from exc
    hashing: _Hashing | None = None
    kept = "the previous file is intact" if path.is_file() else "no checkpoint was written yet"  # true after a failure

    def replacing() -> None:  # the bytes are on disk, the old file still in place
        if before_replace is not None and hashing is not None:
            before_replace(hashing.entry())
        if previous is not None and path.exists():
            # Not durable on its own: the folder fsync after the rename that follows covers the new name.
            atomic_copy(path, previous, durable=False)

    try:
        with atomic_file(path, durable=True, before_replace=replacing, later=True) as handle:
            hashing = _Hashing(handle)
            torch.save(_framed(payload), hashing)  # type: ignore[arg-type]  # torch.save needs write and flush only
    except OSError as exc:
        raise CheckpointWriteError(f"{path}: cannot write ({exc.strerror or exc}); {kept}") from exc
    except RuntimeError as exc:
        # torch.save writes its zip records through a C++ writer that swallows our file's OSError and then fails its
        # own position check ("[enforce fail at inline_container.cc] unexpected pos"): the file's error is the cause.
        # Only that case: a RuntimeError with no failed write behind it is not a write failure.
        failed = hashing.failed if hashing is not None else None
        if failed is None:
            raise
        raise CheckpointWriteError(f"{path}: cannot write ({failed.strerror or failed}); {kept}") from exc
    return hashing.entry()


class _Hashing:
    """A write-only file wrapper that counts and hashes what passes through (torch.save needs only write and flush)."""

    def __init__(self, handle: BinaryIO):
        global _writes
        _writes += 1
        self.handle, self.sha256, self.size, self._chunks = handle, hashlib.sha256(), 0, 0
        self.failed: OSError | None = None  # the file's error, which torch's zip writer may replace with its own
        count, _, marker = os.environ.get(PAUSE_ENV, "").partition(":")
        self._pause = marker if count.isdigit() and int(count) == _writes else None

    def write(self, data: Any) -> int:
        self.sha256.update(data)
        self.size += memoryview(data).nbytes
        try:
            written = self.handle.write(data)
        except OSError as exc:
            self.failed = exc
            raise
        self._chunks += 1
        if self._chunks == 2 and fault_points.ACTIVE:  # the kill-anywhere test's instant inside a checkpoint's bytes
            self.handle.flush()
            reached("checkpoint: partly written")
        if self._pause:  # test hook: the kill-during-write test stops the process here, half written
            # Once: an interrupt raised in the sleep unwinds through torch.save, which writes its end of file here.
            marker, self._pause = self._pause, None
            self.handle.flush()
            Path(marker).touch()
            time.sleep(600)
        return written

    def flush(self) -> None:
        self.handle.flush()

    def entry(self) -> dict[str, Any]:
        return {"size": self.size, "sha256": self.sha256.hexdigest()}


def _framed(payload: dict[str, Any]) -> dict[str, Any]:
    return {"format": FORMAT, "version": VERSION, **payload}


def load_checkpoint(path: Path, map_location: Any = "cpu") -> dict[str, Any]:
    """Read a checkpoint after checking it against its folder's manifest (when it has one)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint not found")
    verify(path)
    try:
        # torch warns about a pickle protocol before it refuses: the refusal is the line
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:
        text = str(exc).strip()
        if (
            "Weights only load failed" in text
        ):  # torch's advice (weights_only=False) would let the file run code: not ours to give
            reason = "it holds objects other than tensors and plain data, which expresso never unpickles"
        else:
            reason = text.splitlines()[0] if text else type(exc).__name__
        raise CheckpointError(f"{path}: not a readable checkpoint ({reason})") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not an expresso checkpoint (no '{FORMAT}' marker)")
    _check_payload(payload, path)
    return payload


# What every checkpoint of this format holds, and the kind of each part.
PARTS = {"models": dict, "optimizers": dict, "callbacks": dict, "loop": dict, "metrics": dict, "rng": dict}
LOOP_KEYS = ("epoch", "batch_index", "step")


def _check_payload(payload: dict[str, Any], path: Path) -> None:
    """Parts of the wrong kind are refused here, not by a TypeError later; a missing part is the reader's to report."""
    for key, kind in PARTS.items():
        if key in payload and not isinstance(payload[key], kind):
            raise CheckpointError(
                f"{path}: damaged checkpoint: {key!r} is {type(payload[key]).__name__}, expected a {kind.__name__}"
            )
    if not all(isinstance(state, dict) for state in payload.get("models", {}).values()):
        raise CheckpointError(f"{path}: damaged checkpoint: 'models' must map each model's name to its state dict")
    loop = payload.get("loop", {})
    if loop and not all(type(loop.get(key)) is int and loop[key] >= 0 for key in LOOP_KEYS):
        raise CheckpointError(f"{path}: damaged checkpoint: 'loop' needs integers {list(LOOP_KEYS)}, found {loop!r}")
