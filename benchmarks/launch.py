"""Starting a measured child process: wall time, peak memory, and the same environment for every run.

Every child gets one thread (``OMP_NUM_THREADS=1``, ``MKL_NUM_THREADS=1``;
the Python children also call ``torch.set_num_threads(1)``) and bytecode
caching: a sandbox may set ``PYTHONDONTWRITEBYTECODE``, which makes every
start recompile the editable expresso package while installed packages
read their cached ``.pyc``. Users have caches, so the children write theirs
under one ``PYTHONPYCACHEPREFIX`` in the temp folder, never into the source
tree; the benchmark's warm-up runs fill it.

Peak memory is the child's own ``ru_maxrss``, read with ``os.wait4`` so each
number belongs to one run (``getrusage(RUSAGE_CHILDREN)`` would report the
largest child so far).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from .cases import ROOT

PYCACHE = Path(tempfile.gettempdir()) / "expresso-bench-pycache"
TIMEOUT_S = 900


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONPYCACHEPREFIX=str(PYCACHE), PYTHONWARNINGS="ignore")
    return env


@dataclass
class Finished:
    launched_at: float  # time.time() just before the process started
    seconds: float  # launch to exit
    peak_rss_mb: float
    returncode: int
    log: Path

    def tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def run(command: list[str], log: Path, env: dict[str, str] | None = None) -> Finished:
    """Run ``command`` in the repository root, its output into ``log`` (``env`` on top of ``child_env()``); never raises on a failed child."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("wb") as out:
        launched_at = time.time()
        start = time.perf_counter()
        process = subprocess.Popen(
            command,
            cwd=ROOT,
            env={**child_env(), **(env or {})},
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        watchdog = threading.Timer(TIMEOUT_S, process.kill)
        watchdog.start()
        try:
            _, status, usage = os.wait4(process.pid, 0)
        finally:
            watchdog.cancel()
        seconds = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)  # already reaped: keep Popen from waiting again
    scale = 1 / 1024 if sys.platform != "darwin" else 1 / 2**20  # Linux reports KiB, macOS bytes
    return Finished(launched_at, seconds, usage.ru_maxrss * scale, process.returncode, log)


def python(*args: str) -> list[str]:
    return [sys.executable, *args]


def expresso_command(*args: str) -> list[str]:
    """``expresso ...`` as a user types it: the console script beside this Python, else ``python -m expresso``."""
    script = Path(sys.executable).with_name("expresso")
    return [str(script), *args] if script.is_file() else python("-m", "expresso", *args)
