"""How fast the CLI answers when it should not need torch.

Times, as medians of alternating runs in one session: a bare Python start
(the floor), ``expresso --help``, ``expresso config`` on the digits example,
``expresso runs`` on a root of 64 runs of it (written by hand: a run.json and
the example's resolved config.yaml each, as a training writes them) and, for
scale, ``expresso config --check`` (which imports torch on purpose).
Also lists whether torch or omegaconf was imported on each path.
Target (issue: config system): --help and config under 0.5 s median; runs
too (issue 14: it had taken up to ~50 s with 64 runs on a loaded machine).
"""

from __future__ import annotations

import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .launch import child_env

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = "examples/digits/configs/experiments/digits_mlp.yaml"
RUNS = 15
TARGET_S = 0.5
LISTED_RUNS = 64
RUNS_ROOT = Path(tempfile.gettempdir()) / "expresso-bench-runs"

CASES = {
    "python -c pass (floor)": [sys.executable, "-c", "pass"],
    "expresso --help": [sys.executable, "-m", "expresso", "--help"],
    "expresso config": [sys.executable, "-m", "expresso", "config", EXAMPLE],
    f"expresso runs ({LISTED_RUNS} runs)": [sys.executable, "-m", "expresso", "runs", str(RUNS_ROOT)],
    "expresso config --check": [sys.executable, "-m", "expresso", "config", "--check", EXAMPLE],
}
PROBE = "import sys, runpy; sys.argv = {argv!r}; \ntry:\n runpy.run_module('expresso', run_name='__main__')\nexcept SystemExit: pass\nprint(sorted(m for m in ('torch', 'omegaconf', 'rich') if m in sys.modules), file=sys.stderr)"


def _time(command: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, cwd=ROOT, env=child_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - start


def _imported(command: list[str]) -> str:
    if command[1:3] != ["-m", "expresso"]:
        return "-"
    argv = ["expresso", *command[3:]]
    result = subprocess.run(
        [sys.executable, "-c", PROBE.format(argv=argv)],
        cwd=ROOT,
        env=child_env(),
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stderr.strip().splitlines()[-1]


def _write_runs_root() -> None:
    """RUNS_ROOT afresh: LISTED_RUNS run folders of the example, each with its own learning rate (one differing column)."""
    import yaml

    config = subprocess.run(
        [sys.executable, "-m", "expresso", "config", EXAMPLE],
        cwd=ROOT,
        env=child_env(),
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    tree = yaml.safe_load(config)
    shutil.rmtree(RUNS_ROOT, ignore_errors=True)
    for i in range(LISTED_RUNS):
        folder = RUNS_ROOT / tree["name"] / f"20260101-000000-{i:06x}"
        (folder / "checkpoints").mkdir(parents=True)
        tree["optimizer"]["lr"] = 1e-4 * (i + 1)
        (folder / "config.yaml").write_text(yaml.safe_dump(tree, sort_keys=False))
        summary = {"epochs": 10, "monitor": "val/acc", "best": 0.9, "best_epoch": 7}
        record = {"name": tree["name"], "run_id": folder.name, "status": "completed", "summary": summary}
        (folder / "run.json").write_text(json.dumps(record, indent=2))


def main(runs: int = RUNS) -> dict:
    """Print the table; return {case: {"seconds": [...], "imports": "..."}} for the report."""
    _write_runs_root()
    times: dict[str, list[float]] = {name: [] for name in CASES}
    for command in CASES.values():  # warm the file cache once
        _time(command)
    for _ in range(runs):  # alternate the cases so drift hits all of them alike
        for name, command in CASES.items():
            times[name].append(_time(command))
    floor = statistics.median(times["python -c pass (floor)"])
    print(f"CLI start-up, {runs} alternating runs each, medians (min-max); target < {TARGET_S} s where marked")
    print(f"{'case':28} {'median s':>9} {'min-max s':>13} {'over floor':>11}  imports")
    found = {}
    for name, command in CASES.items():
        values = times[name]
        median = statistics.median(values)
        imported = _imported(command)
        mark = "" if "check" in name or "floor" in name else ("  ok" if median < TARGET_S else "  OVER TARGET")
        print(
            f"{name:28} {median:9.3f} {min(values):6.3f}-{max(values):.3f} {median - floor:+10.3f}s  {imported}{mark}"
        )
        found[name] = {
            "seconds": values,
            "imports": imported,
            "target_s": None if "check" in name or "floor" in name else TARGET_S,
        }
    return found


if __name__ == "__main__":
    main()
