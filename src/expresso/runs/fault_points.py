"""A test hook: SIGKILL the process at the N-th step of the run folder's writers, so a test can kill at every instant.

The promise "a kill at any moment leaves a run folder that resumes to the
uninterrupted run's files" is only as good as the instants it was tested
at. Killing after a random delay rarely lands between two system calls of
one write (after a checkpoint's rename, before best.ckpt's link), which is
where the bugs were. So every writer here calls ``reached(label)`` between
its file-system steps (bytes written, fsynced, renamed, linked, folder
fsynced), and the kill-anywhere test (tests/integration/test_kill_anywhere.py)
enumerates those steps and kills at chosen ones.

``EXPRESSO_TEST_FS_STEPS=N:LOG``: append each step's label to the file
``LOG`` and, at the N-th (counted from 1; 0 never), kill the process with
SIGKILL, as a lost node would: no handler, no flush. Unset (always, outside
the tests), ``reached`` returns after one comparison.
"""

from __future__ import annotations

import os
import signal

ENV = "EXPRESSO_TEST_FS_STEPS"

_kill_at, _, _log = os.environ.get(ENV, "").partition(":")
_KILL_AT = int(_kill_at) if _kill_at.isdigit() else 0
_LOG = _log or None
ACTIVE = _LOG is not None  # for a writer that must do more at a step when it may be killed there (flush its bytes)
_count = 0


def reached(label: str) -> None:
    """One file-system step is done (``label`` names it); the test hook may log it or kill the process here."""
    if _LOG is None:
        return
    global _count
    _count += 1
    with open(_LOG, "a", encoding="utf-8") as log:
        log.write(f"{_count} {label}\n")
    if _count == _KILL_AT:
        os.kill(os.getpid(), signal.SIGKILL)
