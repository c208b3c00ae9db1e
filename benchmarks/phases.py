"""Where a cold fit's time goes, epoch by epoch: the hand loop against expresso's API, with and without checkpoints.

The training cases time a cold fit whole, and attribution.py takes warm
fits apart; neither says in which part of an epoch a cold fit spends what it
adds. Here each run is a fresh process (``python -m benchmarks.phases
VARIANT CASE``), as in the training cases, and marks its epochs' phases
(``probe.EpochPhases`` inside expresso, ``hand_loop.train(mark=...)`` in the
hand loop):

- the training pass: an epoch's start to its validation's start;
- the validation pass;
- between epochs: a validation's end to the next epoch's start (expresso's
  epoch-end callbacks: history, progress, the checkpoint's capture);
- the fit's end: the last validation's end to the fit's end, which waits for
  the last checkpoint write;

a fit ends, as the CLI's probe (FitTimer) ends it, when the last checkpoint
is on disk, before the other callbacks' FIT_END work (``trainer.fit()``, the
API rows' clock in the training cases, includes that work too);

and, for expresso, each checkpoint write on the writer thread
(checkpoints/writer.py), its wall time and that thread's CPU time. The
first epoch (first calls, allocator growth) is shown apart; the other
columns are medians over epochs 2 to N, then over rounds.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from . import launch
from .cases import CASES

VARIANTS = {  # label -> the child's variant
    "hand loop": "hand",
    "expresso API": "expresso-api",
    "expresso API, no checkpoints": "expresso-api-no-checkpoints",
}
CASE_NAMES = ("mlp", "cnn")


def run(rounds: int, scratch: Path) -> dict:
    """Parent side: per case, a warm-up run of each variant, then ``rounds`` alternating rounds, one process per run."""
    found: dict = {"rounds": rounds, "cases": {}}
    for name in CASE_NAMES:
        runs: dict[str, list[dict]] = {label: [] for label in VARIANTS}
        for index in range(-1, rounds):  # -1: the warm-up (page and bytecode caches), discarded
            for label, variant in VARIANTS.items():
                folder = scratch / "phases" / name / f"round-{index}" / variant
                folder.mkdir(parents=True, exist_ok=True)
                out = folder / "result.json"
                done = launch.run(
                    launch.python(
                        "-m", "benchmarks.phases", variant, name, "--out", str(out), "--workdir", str(folder)
                    ),
                    folder / "output.log",
                )
                if done.returncode != 0:
                    return {"error": f"{name}, {label}: exit status {done.returncode}:\n{done.tail()}"}
                if index >= 0:
                    runs[label].append(json.loads(out.read_text()))
        found["cases"][name] = runs
        print(f"{name}: " + ", ".join(f"{label} {_median(r, 'fit_s'):.3f} s" for label, r in runs.items()))
    return found


def _median(runs: list[dict], key: str) -> float:
    return statistics.median(run[key] for run in runs)


def phases(marks: list[tuple[str, float]]) -> dict:
    """One fit's phases, in seconds, from its marks (the module docstring says which)."""
    times: dict[str, list[float]] = {}
    for name, at in marks:
        times.setdefault(name, []).append(at)
    starts, val_starts, val_ends = times["epoch_start"], times["val_start"], times["val_end"]
    (fit_start,), (fit_end,) = times["fit_start"], times["fit_end"]
    later = range(1, len(starts))
    return {
        "fit_s": fit_end - fit_start,
        "first_epoch_s": (starts[1] if len(starts) > 1 else fit_end) - starts[0],
        "train_s": statistics.median(val_starts[i] - starts[i] for i in later),
        "val_s": statistics.median(val_ends[i] - val_starts[i] for i in later),
        "between_s": statistics.median(starts[i] - val_ends[i - 1] for i in later),
        "end_s": fit_end - val_ends[-1],
    }


def section(result: dict) -> list[str]:
    """The report's table: per case and variant, the fit and its phases (ms), paired ratios against the hand loop."""
    from .report import _s, _table
    from .summary import paired, stats

    lines = [
        "## Where a cold fit's time goes, epoch by epoch (benchmarks/phases.py)",
        "",
        f"The `mlp` and `cnn` cases, {result['rounds']} alternating rounds, one process per run, after a warm-up run of "
        "each. Fit: the first fit in a fresh process, FIT_START to the last checkpoint on disk (as the CLI's probe "
        "times it); ratio paired per round with the hand loop. First epoch: all of it. Training pass, validation, between epochs: medians over epochs 2 to N (between: "
        "a validation's end to the next epoch's start, where the epoch-end callbacks run). Fit end: the last "
        "validation's end to the fit's end (the wait for the last checkpoint). Checkpoint write: each write on the "
        "writer thread, its wall time and that thread's CPU time. Milliseconds, median (min-max) over rounds.",
        "",
    ]
    rows = []
    for name, runs in result["cases"].items():
        hand = [run["fit_s"] for run in runs["hand loop"]]
        for label, found in runs.items():
            fits = [run["fit_s"] for run in found]
            ratio = "1x" if label == "hand loop" else _s(paired(fits, hand, lambda mine, base: mine / base), 3, "x")
            ms = {key: stats(run[key] * 1e3 for run in found) for key in found[0] if key.endswith("_s")}
            writes = [write for run in found for write in run.get("writes", [])]
            write = (
                f"{_s(stats(w['wall_s'] * 1e3 for w in writes), 2)} / {_s(stats(w['cpu_s'] * 1e3 for w in writes), 2)}"
                if writes
                else "-"
            )
            rows.append(
                [name, label, _s(ms["fit_s"], 0), ratio]
                + [_s(ms[key], 1) for key in ("first_epoch_s", "train_s", "val_s", "between_s", "end_s")]
                + [write]
            )
    header = ["case", "variant", "fit ms", "ratio", "first epoch", "training pass", "validation", "between epochs"]
    return lines + _table([*header, "fit end", "checkpoint write: wall / CPU"], rows) + [""]


def _timed_writes(writes: list[dict]) -> None:
    """Time each job on expresso's checkpoint writer thread (a benchmark's instrument: it wraps a private function)."""
    from expresso.engine.checkpoints import writer

    run_job = writer._run

    def timed(job, then):
        wall, cpu = time.perf_counter(), time.thread_time()
        try:
            return run_job(job, then)
        finally:
            writes.append({"wall_s": time.perf_counter() - wall, "cpu_s": time.thread_time() - cpu})

    writer._run = timed


def child(variant: str, case_name: str, workdir: Path) -> dict:
    """One fit in this process, its phases and (expresso) its checkpoint writes."""
    import torch

    torch.set_num_threads(1)
    case = CASES[case_name]
    if variant == "hand":
        from . import hand_loop

        marks: list[tuple[str, float]] = []
        hand_loop.train(case, mark=lambda phase: marks.append((phase, time.perf_counter())))
        return phases(marks)
    from . import expresso_api
    from .probe import EpochPhases

    writes: list[dict] = []
    _timed_writes(writes)
    probe = EpochPhases()
    without = ("Checkpoint",) if variant == "expresso-api-no-checkpoints" else ()
    expresso_api.train(case, workdir, without=without, also=(probe,))
    return {**phases(probe.marks), "writes": writes}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.phases", description=__doc__.splitlines()[0])
    parser.add_argument("variant", choices=sorted(VARIANTS.values()))
    parser.add_argument("case", choices=CASE_NAMES)
    parser.add_argument("--out", required=True, help="JSON file for the result")
    parser.add_argument("--workdir", required=True, help="scratch folder (run folders)")
    args = parser.parse_args(argv)
    result = child(args.variant, args.case, Path(args.workdir))
    Path(args.out).write_text(json.dumps(result))


if __name__ == "__main__":
    main()
