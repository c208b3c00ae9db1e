"""The report as people read it: Markdown tables (printed, and written to RESULTS.md) and the machine they came from.

Why apart: what the numbers are (``summary.py``) and how they look change
for different reasons. Every page starts with the date, the machine
(``uname -a``, the CPU model, cores, memory), the versions and the checkout
(with the number of files modified under ``src/``: the engine may be moving
while it is measured), and the load average, which says how quiet the
machine was.
"""

from __future__ import annotations

import datetime
import importlib.metadata
import os
import platform
import subprocess
from pathlib import Path
from typing import Any

from .cases import ALL, ROOT
from .summary import FLOOR_ROW, paired, stats


# -- machine ------------------------------------------------------------------
def _command(*args: str) -> str:
    try:
        return subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def machine() -> dict:
    """Where and on what the numbers were taken (no torch import: versions come from package metadata)."""
    cpu = ""
    try:
        cpu = next(
            (
                line.split(":", 1)[1].strip()
                for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")
            ),
            "",
        )
    except OSError:
        cpu = platform.processor()
    memory_gb = None
    try:
        import psutil

        memory_gb = round(psutil.virtual_memory().total / 2**30, 1)
    except ImportError:
        pass
    dirty = _command("git", "status", "--porcelain", "--", "src")
    return {
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "uname": _command("uname", "-a") or " ".join(platform.uname()),
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
        "memory_gb": memory_gb,
        "python": platform.python_version(),
        "versions": {
            p: _version(p)
            for p in ("torch", "torch-expresso", "torchmetrics", "lightning", "pytorch-ignite", "accelerate", "psutil")
        },
        "git_commit": _command("git", "rev-parse", "--short", "HEAD"),
        "src_modified_files": len(dirty.splitlines()) if dirty else 0,
        "load_average_start": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
    }


# -- rendering ----------------------------------------------------------------
def _s(value: dict | None, digits: int = 3, unit: str = "") -> str:
    if not value:
        return "-"
    return f"{value['median']:.{digits}f}{unit} ({value['min']:.{digits}f}-{value['max']:.{digits}f})"


def number(value: float | None, digits: int = 3, unit: str = "") -> str:
    return "-" if value is None else f"{value:.{digits}f}{unit}"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    return lines + ["| " + " | ".join(row) + " |" for row in rows]


def process_split(summary: dict) -> list[str]:
    """A one-fit case's whole process over the hand script's, split into the fit's difference and the rest's."""
    lines = [
        "The whole process (start to exit) over the hand script's, paired per round, and where it goes: the fit's own "
        "difference, and the rest of the process (start-up, imports, building, the final evaluation, records, exit).",
        "",
    ]
    rows = [
        [
            label,
            _s(row["process_s"], 2),
            _s(row["process_over_hand_s"], 3),
            _s(row["fit_over_hand_s"], 3),
            _s(row["outside_fit_over_hand_s"], 3),
        ]
        for label, row in summary["rows"].items()
        if label not in (FLOOR_ROW, summary["baseline"]) and row.get("fit_over_hand_s") is not None
    ]
    header = ["framework", "process s", "over hand s", "of which the fit s", "of which outside the fit s"]
    return [*lines, *_table(header, rows), ""]


def training_section(name: str, result: dict, summary: dict) -> list[str]:
    case = result["case"]
    lines = [f"## {case['title']} (`{name}`)", ""]
    lines.append(
        f"{case['epochs']} epochs, batch {case['batch_size']}, Adam lr {case['lr']}, validation accuracy every epoch, 1 thread, seed {case['seed']}; "
        f"{result['rounds']} alternating rounds, one process per run. Fit: the first fit in a fresh process (cold, what `expresso train` gets); "
        "warm: a second fit in the same process. Ratios are paired per round against the "
        f"{summary['baseline']}. First step: from launching the process to the first optimizer step; over torch: minus that round's `python -c \"import torch\"` process (the first row); over hand: minus that round's hand-loop first step (what the framework adds to start-up, data loading excluded)."
    )
    lines.append("")
    header = [
        "framework",
        "fit s, median (min-max)",
        "ratio (min-max)",
        "warm fit s",
        "warm ratio",
        "steps/s",
        "first step s",
        "over torch s",
        "over hand s",
        "peak RSS MB",
        "RSS ratio",
        "val acc",
    ]
    rows = []
    for label, row in summary["rows"].items():
        if label == FLOOR_ROW:  # its "first step" is the whole process: start, import torch, exit
            rows.append(
                [label, "-", "-", "-", "-", "-", _s(row["process_s"], 2), "0", "-", _s(row["peak_rss_mb"], 0), "-", "-"]
            )
            continue
        accuracy = ", ".join(f"{a:.4f}" for a in row["val_acc"]) or "-"
        failed = f" ({row['failed']} failed)" if row["failed"] else ""
        rows.append(
            [
                label + failed,
                _s(row["fit_s"]),
                _s(row["ratio"], 2, "x"),
                _s(row["warm_fit_s"]),
                _s(row["warm_ratio"], 2, "x"),
                number(row["steps_per_s"], 0),
                _s(row["first_step_s"], 2),
                _s(row["first_step_over_torch_s"], 2),
                _s(row["first_step_over_hand_s"], 2),
                _s(row["peak_rss_mb"], 0),
                number(row["rss_ratio"], 3, "x"),
                accuracy,
            ]
        )
    lines += _table(header, rows)
    lines.append("")
    if case.get("fits") == 1:
        lines += process_split(summary)
    lines.append(
        "Final validation accuracies "
        + (
            "agree: the same work."
            if summary["accuracies_agree"]
            else "**disagree: a run did not do the same work (see val acc)**."
        )
    )
    threads = sorted({t for row in summary["rows"].values() for t in row["threads"]})
    lines.append(f"torch threads during the fits: {', '.join(map(str, threads)) or '-'}.")
    fetch = sorted({f for label, row in summary["rows"].items() if label.startswith("expresso") for f in row["fetch"]})
    if fetch:
        lines.append(
            f"expresso fetched training batches by {' / '.join(fetch)}; the hand loop and the peers per sample + collate (the plain DataLoader idiom)."
        )
    for label, reason in result.get("skipped", {}).items():
        lines.append(f"- {label}: skipped, {reason}")
    for label, row in summary["rows"].items():
        if row["error"]:
            first = row["error"].strip().splitlines()
            lines.append(f"- {label}: {row['failed']} run(s) failed: `{first[0]}` (full output in results.json)")
    lines.append("")
    return lines


def data_section(result: dict, summary: dict, defaults: dict) -> list[str]:
    lines = training_section("data", result, summary)
    settings = ", ".join(
        f"{k}={defaults.get(k)!r}" for k in ("num_workers", "prefetch_factor", "persistent_workers", "pin_memory")
    )
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    lines.insert(
        -1,
        f"expresso's default `dataloader` settings: {settings} (num_workers 'auto' gives a per-sample dataset like this one a worker per CPU, up to 8: {min(cpus, 8)} here, kept alive between epochs; prefetch_factor None means torch's default of 2 batches per worker). Reported as measured; no target.",
    )
    lines.insert(-1, "")
    return lines


def imports_section(result: dict, summary: dict) -> list[str]:
    lines = [
        "## Import time",
        "",
        f"`python -c STATEMENT`, {result['rounds']} alternating rounds, medians (min-max). Process: start, import, exit; "
        "over torch: paired per round with `import torch`. In-process: `import torch` timed, then the statement on top of it "
        "(what it adds to torch, without the noise of torch's own import).",
        "",
    ]
    rows = [
        [
            f"`{result['statements'][name]}`",
            _s(row["seconds"]),
            _s(row["process_over_torch_s"]),
            _s(row["torch_s"]),
            _s(row["added_s"]),
            _s(row["peak_rss_mb"], 0),
        ]
        for name, row in summary["rows"].items()
    ]
    lines += _table(
        [
            "statement",
            "process s",
            "process over torch s",
            "in-process: torch s",
            "in-process: added to torch s",
            "peak RSS MB",
        ],
        rows,
    )
    for name in result.get("skipped", []):
        lines.append(f"- {name}: skipped (not installed)")
    return lines + [""]


def checkpoint_section(result: dict, summary: dict) -> list[str]:
    lines = ["## Checkpoint write (~50M parameters)", ""]
    if "error" in result:
        return lines + [f"Failed: `{result['error'].splitlines()[0]}`", ""]
    lines.append(
        f"{result['parameters'] / 1e6:.1f}M float32 parameters, a {result['file_mb']:.0f} MB file; {result['rounds']} alternating rounds after a warm-up; "
        f"every file read back and compared outside the clock. Peak RSS of the process: {result.get('peak_rss_mb', 0):.0f} MB."
    )
    lines.append("")
    rows = [
        [
            variant,
            _s(row["seconds"]),
            _s(row["ratio"], 2, "x"),
            _s(row["blocked_s"]),
            "yes" if row["verified"] else "**no**",
        ]
        for variant, row in summary["rows"].items()
    ]
    lines += _table(["writer", "seconds", "ratio to torch.save", "training blocked s", "read back equal"], rows)
    for variant, row in summary["rows"].items():
        if row["error"]:
            lines.append(f"- {variant}: `{row['error']}`")
    return lines + [""]


def cli_section(cli: dict) -> list[str]:
    lines = ["## CLI start-up (benchmarks/cli_startup.py)", ""]
    rows = [
        [name, _s(stats(row["seconds"])), "-" if row["target_s"] is None else f"< {row['target_s']} s", row["imports"]]
        for name, row in cli.items()
    ]
    return lines + _table(["command", "seconds", "target", "imports"], rows) + [""]


def epoch_section(epoch: dict) -> list[str]:
    lines = ["## Time per epoch, example configs, batch 64 (benchmarks/epoch_time.py)", ""]
    rows = [
        [
            model,
            _s(stats(v["hand"]), 4),
            _s(stats(v["expresso"]), 4),
            _s(paired(v["expresso"], v["hand"], lambda a, b: a / b), 3, "x"),
        ]
        for model, v in epoch.items()
    ]
    return lines + _table(["model", "hand loop s/epoch", "expresso s/epoch", "ratio"], rows) + [""]


def failed_section(name: str, error: str) -> list[str]:
    last = [line for line in error.strip().splitlines() if line.strip()][-1:]
    return [f"## {name}: failed", "", f"`{last[0] if last else error}` (traceback in results.json)", ""]


def markdown(results: dict, summary: dict) -> str:
    info = results["machine"]
    versions = ", ".join(f"{k} {v}" for k, v in info["versions"].items() if v)
    lines = [
        "# expresso benchmarks",
        "",
        f"- date: {info['date']}; mode: {results['mode']} (`python -m benchmarks {' '.join(results['argv'])}`".rstrip()
        + ")",
        f"- machine: `{info['uname']}`",
        f"- cpu: {info['cpu']}, {info['cpu_count']} cores"
        + (f", {info['memory_gb']} GB memory" if info.get("memory_gb") else ""),
        f"- python {info['python']}; {versions}",
        f"- checkout: {info['git_commit']}"
        + (
            f", {info['src_modified_files']} modified file(s) under src/"
            if info["src_modified_files"]
            else ", src/ clean"
        ),
        f"- load average at start / end: {_load(info.get('load_average_start'))} / {_load(info.get('load_average_end'))}",
        f"- took {results.get('seconds', 0) / 60:.1f} min",
        "",
    ]
    found = summary.get("targets", [])
    if found:
        lines += ["## Targets (issue: performance)", ""]
        rows = [
            [
                t["target"],
                number(t["value"], 3, " " + t["unit"]),
                f"<= {t['limit']} {t['unit']}",
                "ok" if t["ok"] else "**over**",
            ]
            for t in found
        ]
        lines += _table(["target", "measured (median)", "limit", ""], rows) + [""]
    for name in ALL:
        result = results.get(name)
        if result is None:
            continue
        if "error" in result and name != "checkpoint":  # the checkpoint section reports its child's error itself
            lines += failed_section(name, result["error"])
        elif name == "imports":
            lines += imports_section(result, summary[name])
        elif name in ("mlp", "cnn", "job"):
            lines += training_section(name, result, summary[name])
        elif name == "data":
            lines += data_section(result, summary[name], result.get("expresso_defaults", {}))
        elif name == "trackers":
            from .tracker_case import section as trackers_section  # it builds on this module's table helpers

            lines += trackers_section(result, summary[name])
        elif name == "checkpoint":
            lines += checkpoint_section(result, summary[name])
        elif name == "compile":
            from .compile_case import section

            lines += section(result)
        elif name == "phases":
            from .phases import section as phases_section  # it builds on this module's table helpers

            lines += phases_section(result)
        elif name == "cli":
            lines += cli_section(result)
        elif name == "epoch":
            lines += epoch_section(result)
        else:
            from .attribution import section as attribution_section  # it builds on this module's table helpers

            lines += attribution_section(result)
    lines += [
        "## How it is measured",
        "",
        "- Every training run is its own process (`python -m benchmarks.child`, or `expresso train` for the CLI), launched in a fixed rotation; "
        "peak RSS is that process's `ru_maxrss` (via `os.wait4`).",
        "- Children run with `OMP_NUM_THREADS=1` (and `torch.set_num_threads(1)`), with bytecode caching on under one `PYTHONPYCACHEPREFIX`; "
        "warm-up runs (discarded) fill the caches.",
        "- The CLI's fit time comes from `benchmarks/probe.py:FitTimer`, a user callback in the benchmark configs: FIT_START to FIT_END, "
        "after waiting for the last checkpoint write. The API's is `trainer.fit()`; the hand loop's and the peers' the call that trains.",
        "- Every framework trains the same model from the same seed on the same per-epoch permutation (`benchmarks/workload.py`); "
        "equal final accuracies confirm it. The hand loop does only that (no logging, checkpoints or train metrics); expresso runs "
        "with its defaults on (model summary, progress, metrics.csv, last/best checkpoints every epoch, train and val metrics).",
        "",
    ]
    return "\n".join(lines)


def _load(values: Any) -> str:
    return " ".join(f"{v:.2f}" for v in values) if values else "-"
