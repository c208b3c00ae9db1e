"""Write checkpoints atomically and read them safely.

A checkpoint is written to a temporary file in the same folder, flushed and
fsynced, then renamed over the old one (and the folder fsynced): a crash at
any moment leaves either the old file or the new one, never half of one.
Reading uses ``weights_only=True``: a checkpoint cannot run code.

``BackgroundWriter`` serializes the payload on the caller's thread
(``torch.save`` into memory: the bytes are the state of that moment, and no
tensor is ever touched by another thread), then one background thread
writes, fsyncs and renames those bytes, at most one write in flight. A
failed write is raised at the next save or wait.

The Trainer does not use it yet. With it, the SIGKILL resume test
(tests/integration/test_resume.py) failed about 3 times in 50 runs, always in
a fresh clone's first run or inside the full suite, never in a loop of the
test alone, both with an earlier writer that cloned tensors and pickled them
on the thread and with this one that shares only bytes; plain training is
deterministic (24 concurrent runs, equal weights). The cause is not found;
until it is, the Trainer writes synchronously (``save_atomic``).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, BinaryIO

import torch

from ..errors import BadInput

FORMAT = "expresso-checkpoint"
VERSION = 1


PAUSE_ENV = "EXPRESSO_TEST_PAUSE_DURING_WRITE"  # test hook "N:MARKER": in the N-th write, after its first bytes, touch MARKER and sleep
_writes = 0  # atomic writes started by this process (for the test hook)


class CheckpointError(BadInput, ValueError):
    """A checkpoint that cannot be read, is not an expresso checkpoint, or does not match its manifest entry."""


class CheckpointWriteError(OSError):
    """A checkpoint could not be written (disk full, permissions); the previous one is intact."""


def save_atomic(
    payload: dict[str, Any],
    path: Path,
    *,
    before_replace: Callable[[dict], None] | None = None,
    previous: Path | None = None,
) -> dict[str, Any]:
    """Serialize straight into the temporary file (no copy in memory); returns its size and sha256.

    ``before_replace(entry)`` runs once the bytes are durable, before the
    rename (the manifest records them there, see manifest.py); with
    ``previous``, the file being replaced stays there under that name.
    """
    with _atomic_file(Path(path), before_replace, previous) as handle:
        torch.save(_framed(payload), handle)
    return handle.entry()


def serialize(payload: dict[str, Any]) -> memoryview:
    """The checkpoint file's bytes, in memory: what the background writer writes."""
    buffer = io.BytesIO()
    torch.save(_framed(payload), buffer)
    return buffer.getbuffer()


def write_atomic(data: bytes | memoryview, path: Path) -> None:
    with _atomic_file(Path(path)) as handle:
        handle.write(data)


class _Hashing:
    """A write-only file wrapper that counts and hashes what passes through (torch.save needs only write and flush)."""

    def __init__(self, handle: BinaryIO):
        global _writes
        _writes += 1
        self.handle, self.sha256, self.size = handle, hashlib.sha256(), 0
        count, _, marker = os.environ.get(PAUSE_ENV, "").partition(":")
        self._pause = marker if count.isdigit() and int(count) == _writes else None

    def write(self, data: Any) -> int:
        self.sha256.update(data)
        self.size += memoryview(data).nbytes
        written = self.handle.write(data)
        if self._pause:  # test hook: the kill-during-write test stops the process here, half written
            self.handle.flush()
            Path(self._pause).touch()
            time.sleep(600)
        return written

    def flush(self) -> None:
        self.handle.flush()

    def entry(self) -> dict[str, Any]:
        return {"size": self.size, "sha256": self.sha256.hexdigest()}


def _framed(payload: dict[str, Any]) -> dict[str, Any]:
    return {"format": FORMAT, "version": VERSION, **payload}


@contextlib.contextmanager
def _atomic_file(
    path: Path, before_replace: Callable[[dict], None] | None = None, previous: Path | None = None
) -> Iterator[_Hashing]:
    """A temporary file beside ``path``; renamed over it, durably, only if the block succeeds.

    A failure (a full disk, a permission error) removes the temporary file
    and raises ``CheckpointWriteError``: the file at ``path`` is untouched.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise CheckpointWriteError(
            f"{path}: cannot write ({exc.strerror or exc}); the previous file is intact"
        ) from exc
    try:
        with os.fdopen(fd, "wb") as raw:
            handle = _Hashing(raw)
            yield handle
            raw.flush()
            os.fsync(raw.fileno())
        if before_replace is not None:
            before_replace(handle.entry())
        if previous is not None and path.exists():
            _link_over(path, previous)
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise CheckpointWriteError(
            f"{path}: cannot write ({exc.strerror or exc}); the previous file is intact"
        ) from exc
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_folder(path.parent)


def _link_over(source: Path, target: Path) -> None:
    """Make ``target`` another name of ``source``'s file, atomically (a copy where links are not supported)."""
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    tmp.unlink(missing_ok=True)
    try:
        os.link(source, tmp)
    except OSError:
        shutil.copyfile(source, tmp)
    os.replace(tmp, target)


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
    """Read a checkpoint after checking it against its folder's manifest (when it has one)."""
    from .manifest import verify

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint not found")
    verify(path)
    try:
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


class BackgroundWriter:
    """Writes checkpoints on one long-lived thread; ``wait()`` returns when the last one is on disk."""

    def __init__(self) -> None:
        self._pool: ThreadPoolExecutor | None = None
        self._pending: Future | None = None

    def submit(self, payload: dict[str, Any], path: Path, then: Callable[[], None] | None = None) -> None:
        """Serialize now (this thread), write later (the writer's); ``then`` runs once the file is in place."""
        data = serialize(payload)
        self.wait()

        def write() -> None:
            write_atomic(data, path)
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
