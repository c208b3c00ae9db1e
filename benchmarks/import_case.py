"""Import times: what importing expresso adds to importing torch, with the peers for scale.

Each statement runs in a fresh ``python -c`` (caches warm, one warm-up pass
discarded), in alternating rounds. Two numbers per run:

- the process time (start, import, exit), as a user waits for it;
- for statements that import torch, the import timed inside the process in
  two steps: ``import torch``, then the statement on top of it. The second
  step is exactly what the statement adds to torch, free of the variance of
  torch's own import (which on a busy machine is larger than the effect).

Target (issue: performance): ``import expresso.engine`` adds at most 0.3 s
to ``import torch`` (the in-process number).
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

from . import launch

# name -> (statement, whether it imports torch)
STATEMENTS = {
    "python -c pass (floor)": ("pass", False),
    "import torch": ("import torch", True),
    "import expresso (config layer, no torch)": ("import expresso", False),
    "import expresso.engine": ("import expresso.engine", True),
    "expresso engine + built-in callbacks": ("import expresso.assembly, expresso.callbacks", True),
    "import lightning": ("import lightning", True),
    "import ignite.engine": ("import ignite.engine", True),
    "import accelerate": ("import accelerate", True),
}
BASELINE = "import torch"
TARGET = ("import expresso.engine", 0.3)  # at most this many seconds added to import torch
# Times torch, then the statement on top of it; prints both on the last line.
SPLIT = "import time; a = time.perf_counter(); import torch; b = time.perf_counter(); {statement}; c = time.perf_counter(); print(b - a, c - b)"


def _available(statement: str) -> bool:
    words = statement.replace(",", " ").split()
    modules = [w for w in words[1:] if w != "import"] if words[0] == "import" else []
    return all(importlib.util.find_spec(m.split(".")[0]) is not None for m in modules)


def _run(statement: str, with_torch: bool, log: Path) -> dict:
    done = launch.run(launch.python("-c", SPLIT.format(statement=statement) if with_torch else statement), log)
    result = {"seconds": done.seconds, "peak_rss_mb": done.peak_rss_mb, "torch_s": None, "added_s": None, "error": None}
    if done.returncode != 0:
        result["error"] = f"exit status {done.returncode}: {done.tail()}"
    elif with_torch:
        result["torch_s"], result["added_s"] = map(float, done.tail(1).split())
    return result


def run(rounds: int, scratch: Path) -> dict:
    cases = {name: spec for name, spec in STATEMENTS.items() if _available(spec[0])}
    skipped = [name for name in STATEMENTS if name not in cases]
    log = scratch / "imports.log"
    for statement, with_torch in cases.values():  # warm-up
        _run(statement, with_torch, log)
    runs: dict[str, list[dict]] = {name: [] for name in cases}
    for index in range(rounds):
        for name, (statement, with_torch) in cases.items():
            runs[name].append(_run(statement, with_torch, log))
        print(f"  .. imports: round {index + 1}/{rounds}", file=sys.stderr, flush=True)
    return {
        "rounds": rounds,
        "statements": {name: spec[0] for name, spec in cases.items()},
        "skipped": skipped,
        "runs": runs,
        "baseline": BASELINE,
        "target": list(TARGET),
    }
