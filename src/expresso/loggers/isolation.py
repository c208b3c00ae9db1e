"""Keeping a tracker library's start from changing the process: Python's random stream, the environment.

A tracker starts inside the fit (``on_fit_start``), after the seed is set:
a library that draws from ``random`` there (Comet names its archives so)
would shift the run's random stream, and draw the same names in every
process of a seeded run. ``own_random_state`` lets it draw from fresh
entropy and gives the run its stream back untouched. ``environment`` sets
variables a library (or the service process it starts) reads while it
starts, and restores them. ``temporary_files_in`` points Python's
temporary files into the run folder while a library creates the folders it
keeps its data in until the end (a killed process leaves them there, not
in /tmp).
"""

from __future__ import annotations

import contextlib
import os
import random
import tempfile
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def own_random_state() -> Iterator[None]:
    """Python's ``random`` seeded from the OS inside the block; the state before it restored after."""
    before = random.getstate()
    random.seed()
    try:
        yield
    finally:
        random.setstate(before)


@contextlib.contextmanager
def environment(values: dict[str, str]) -> Iterator[None]:
    """``os.environ`` updated with ``values`` inside the block, and restored after."""
    before = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in before.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@contextlib.contextmanager
def temporary_files_in(folder: Path) -> Iterator[None]:
    """``tempfile``'s folders and files created inside the block go to ``folder`` (created if missing)."""
    folder.mkdir(parents=True, exist_ok=True)
    before = tempfile.tempdir
    tempfile.tempdir = str(folder)
    try:
        yield
    finally:
        tempfile.tempdir = before
