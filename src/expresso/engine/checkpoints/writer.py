"""Checkpoint writes on a thread of their own: the training thread hands over a copy of the state and trains on.

Why: a checkpoint of the whole run every epoch is most of what expresso
adds to a hand-written loop on a small model (the benchmark's "expresso API,
no checkpoints" row), and on a large one its write stalls training for as
long as the disk takes. Serializing, hashing, renaming and the manifest's
fsync run here, beside the next epoch; the training thread only copies the
state (``detached``: tensors to host memory, containers anew), which is what
``torch.save`` reads first anyway. On a 50M-parameter checkpoint training
waits for the copy, a quarter of the write (benchmarks/reruns/README.md); on
a tiny model trained on one CPU thread little overlaps, since this thread's
Python work (pickling, the manifest's JSON) needs the interpreter lock the
training thread needs. The cost: host memory for the copy while it is
written.

What stays true (engine/saving.py keeps it so):

- one write in flight: the next checkpoint waits for the previous one before
  it captures anything, so a callback's state in a checkpoint never depends
  on how far the previous write got, and a checkpoint's bytes are the same
  as when the write was synchronous;
- in order: one thread, first in first out; ``then`` (linking best.ckpt)
  runs on it after its file is renamed into place;
- failures are not lost: a write that failed is raised on the training thread
  at the next wait (the next checkpoint, the fit's end, a checkpoint read), a
  ``then`` that raised too, unless the caller holds those back;
- a process killed at any moment still finds a verified last or previous
  checkpoint: the files are replaced atomically as before (runs/atomic.py);
  the run folder lags the training by at most one checkpoint.

The fit's end and every failure but Ctrl-C wait for the writes in flight;
Ctrl-C stops the run at once, abandoning a write in flight, which leaves the
previous checkpoint as a kill during a write does.
"""

from __future__ import annotations

import copy
import os
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

import torch

from . import manifest


class _Thread:
    """The process's one writer thread, started at the first write (again in a forked child): every trainer's writes queue on it.

    A daemon: a run stopped by Ctrl-C does not wait for a write in flight
    (``Saving.finish``); the process ends and leaves that write's temporary
    file, as a kill during a write does (a resume removes it). Every other
    way out of a fit waits for its writes first.
    """

    def __init__(self) -> None:
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def submit(self, job: Callable[[], None], then: Callable[[], None] | None) -> Future:
        future: Future = Future()
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._serve, name="expresso-checkpoint", daemon=True)
                self._thread.start()
        self._queue.put((future, job, then))
        return future

    def _serve(self) -> None:
        while True:
            future, job, then = self._queue.get()
            try:
                _run(job, then)
            except BaseException as exc:  # every failure goes back to the training thread
                future.set_exception(exc)
            else:
                future.set_result(None)


_THREAD = _Thread()


def _forked() -> None:  # a forked child (a DataLoader worker) has no writer thread, nor the parent's queued writes
    global _THREAD
    _THREAD = _Thread()


os.register_at_fork(after_in_child=_forked)


class _ThenFailed(Exception):
    """A ``then`` raised: carried apart from a failed write, so a caller may hold it back."""

    def __init__(self, error: BaseException):
        super().__init__(str(error))
        self.error = error


def _run(job: Callable[[], None], then: Callable[[], None] | None) -> None:
    """``job``, then ``then``; the checkpoint names both record go to the manifest in one write (manifest.py says why)."""
    with manifest.names_at_end():
        job()
        if then is not None:
            try:
                then()
            except BaseException as exc:  # Preempted, or a callback's own error: raised where the caller waits
                raise _ThenFailed(exc) from None


class Writes:
    """One trainer's checkpoint writes in flight (on the process's writer thread), and what they raised."""

    def __init__(self) -> None:
        self._pending: list[Future] = []
        self._held: list[BaseException] = []

    def submit(self, job: Callable[[], None], then: Callable[[], None] | None = None) -> None:
        """Run ``job`` (then ``then``, once it succeeded) on the writer thread."""
        self._pending.append(_THREAD.submit(job, then))

    def wait(self, hold: bool = False) -> None:
        """Return once every write handed over is done; raise the first failure (``hold``: keep a ``then``'s for later)."""
        pending, self._pending = self._pending, []
        failed: BaseException | None = None
        for future in pending:
            error = future.exception()
            if isinstance(error, _ThenFailed):
                self._held.append(error.error)
            elif error is not None and failed is None:
                failed = error
        if failed is not None:
            raise failed
        if self._held and not hold:
            first, self._held = self._held[0], []
            raise first

    def abandon(self) -> None:
        """Stop waiting for the writes in flight (Ctrl-C): they go on, or end with the process."""
        self._pending, self._held = [], []


_UNCHANGING = frozenset({int, float, str, bool, bytes, complex, type(None)})  # deepcopy returns these as they are


def detached(payload: Any, memo: dict[int, Any] | None = None) -> Any:
    """A copy of a checkpoint payload that training can no longer change: tensors on the CPU, every container anew.

    Tensors are cloned (a CUDA tensor copied to host memory, where
    ``torch.save`` would copy it anyway; the reader maps it back to the
    training device); one tensor under two names (tied weights) stays one.
    Anything else is deep-copied, so a callback's list mutated by the next
    epoch cannot reach the file; values that cannot change (numbers,
    strings) are kept as they are: a deep copy of each of a history's cells
    was half of this copy's time.
    """
    if type(payload) in _UNCHANGING:
        return payload
    memo = {} if memo is None else memo
    if isinstance(payload, torch.Tensor):
        key = id(payload)
        if key not in memo:
            memo[key] = payload.detach().to("cpu", copy=True)
        return memo[key]
    if isinstance(payload, dict):
        copied = type(payload)((key, detached(value, memo)) for key, value in payload.items())
        if getattr(
            payload, "__dict__", None
        ):  # a state dict's ``_metadata`` (module versions, read by load_state_dict)
            copied.__dict__.update(copy.deepcopy(payload.__dict__))
        return copied
    if isinstance(payload, list):
        return [detached(value, memo) for value in payload]
    if isinstance(payload, tuple) and not hasattr(payload, "_fields"):
        return tuple(detached(value, memo) for value in payload)
    return copy.deepcopy(payload)
