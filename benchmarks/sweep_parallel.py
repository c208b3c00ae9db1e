"""A 2x2 grid on digits, three ways: a shell loop of `expresso train`, `expresso sweep --jobs 1`, and `--jobs 2`.

The issue's measure for parallel trials (issue 16): the wall time of four
trials run two at a time against four run one after another, and what the
CPU paid (the children's user + system seconds). The loop's processes take
torch's default thread count; the sweep gives each trial cores // J threads.
Run: ``python -m benchmarks.sweep_parallel [--rounds N]``; it prints a
Markdown table (median of the rounds, min-max in brackets).
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BASE = Path(__file__).resolve().parents[1] / "examples/digits/configs/experiments/digits_mlp.yaml"
CONFIG = f"extends: {BASE}\nname: bench\ntrainer: {{max_epochs: 3, batch_size: 128}}\n"
GRID = {"optimizer.lr": ["0.001", "0.003"], "trainer.seed": ["0", "1"]}


def _expresso(*args: str, cwd: Path) -> None:
    subprocess.run([sys.executable, "-m", "expresso", *args], cwd=cwd, check=True, capture_output=True)


def _loop(folder: Path) -> None:
    for lr in GRID["optimizer.lr"]:
        for seed in GRID["trainer.seed"]:
            _expresso(
                "train", "bench.yaml", f"optimizer.lr={lr}", f"trainer.seed={seed}", "--runs-root", "loop", cwd=folder
            )


def _sweep(folder: Path, jobs: int) -> None:
    grid = [item for key, values in GRID.items() for item in ("--grid", f"{key}={','.join(values)}")]
    _expresso("sweep", "bench.yaml", *grid, "--jobs", str(jobs), "--runs-root", f"sweep-{jobs}", cwd=folder)


def _measured(run, folder: Path) -> tuple[float, float]:
    """(wall seconds, children's CPU seconds) of one run in a fresh runs root."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    run(folder)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=1)
    rounds = parser.parse_args().rounds
    variants = {
        "shell loop of `expresso train` (4 processes, default threads)": _loop,
        "`expresso sweep --jobs 1`": lambda folder: _sweep(folder, 1),
        "`expresso sweep --jobs 2`": lambda folder: _sweep(folder, 2),
    }
    found: dict[str, list[tuple[float, float]]] = {name: [] for name in variants}
    load = os.getloadavg()
    for _ in range(rounds):
        for name, run in variants.items():  # alternating: a drift in the machine's load hits every variant alike
            with tempfile.TemporaryDirectory() as scratch:
                folder = Path(scratch)
                (folder / "bench.yaml").write_text(CONFIG)
                found[name].append(_measured(run, folder))
    print(
        f"{os.cpu_count()} cores; load average at start {load[0]:.2f}, at end {os.getloadavg()[0]:.2f}; {rounds} round(s)\n"
    )
    print("| variant | wall s | CPU s (children) |\n|---|---|---|")
    for name, values in found.items():
        walls, cpus = [v[0] for v in values], [v[1] for v in values]
        print(
            f"| {name} | {statistics.median(walls):.1f} ({min(walls):.1f}-{max(walls):.1f})"
            f" | {statistics.median(cpus):.1f} ({min(cpus):.1f}-{max(cpus):.1f}) |"
        )


if __name__ == "__main__":
    main()
