"""What the trackers cost: the MLP case with ``loggers: [csv]`` against ``[csv, tensorboard, mlflow]`` (``trackers``).

The same run as the ``mlp`` case (10 epochs, batch 32, a training row every
``trainer.log_every_n_steps`` = 50 steps: 8 step rows and 10 epoch rows),
alternating in rounds like every training case, four ways:

- CLI (``expresso train``), one process per run. The tracked runs share one
  runs root, as a user's runs do: ``mlflow.db`` exists (the warm-up made it)
  and each run adds its own MLflow run to it.
- Python API, two fits per process, each in a new run folder under one
  runs root: the cold fit creates ``mlflow.db`` (the first run in a runs
  root) and imports the trackers; the warm fit pays neither, so it shows what
  logging itself costs per fit.

Fit time is ``probe.py``'s FIT_START to FIT_END (the CLI) or
``trainer.fit()`` (the API), so it holds what the loggers do at the start of
a fit (importing their library, opening the store, creating the run, logging
the config) and every row; the API's also holds the loggers' end (the
artifact, the run's status), which the CLI's probe stops before. The process
time holds everything. Target (issue: trackers): the CLI fit with the three
loggers within 5% of csv alone.
"""

from __future__ import annotations

from pathlib import Path

from . import summary as summary_of
from .cases import CASES
from .report import _s, _table
from .training_cases import Variant, run_case

TRACKED = "loggers=[csv, tensorboard, mlflow]"
CLI_CSV, CLI_TRACKED = "CLI, loggers [csv]", summary_of.TRACKED_CLI_ROW
API_CSV, API_TRACKED = "API, loggers [csv]", "API, loggers [csv, tensorboard, mlflow]"
PAIRS = ((CLI_TRACKED, CLI_CSV), (API_TRACKED, API_CSV))


def variants(scratch: Path) -> list[Variant]:
    return [
        Variant(CLI_CSV, "expresso-cli", overrides=("loggers=[csv]",)),
        Variant(CLI_TRACKED, "expresso-cli", overrides=(TRACKED,), runs_root=str(scratch / "tracked-runs")),
        Variant(API_CSV, "expresso-api", overrides=("loggers=[csv]",)),
        Variant(API_TRACKED, "expresso-api", overrides=(TRACKED,)),
    ]


def run(rounds: int, scratch: Path, warmed: set[str]) -> dict:
    folder = scratch / "trackers"
    return run_case(CASES["mlp"], variants(folder), rounds, folder, warmed)


def _fit(run: dict, index: int) -> float | None:
    fits = run.get("fits") or []
    return fits[index]["seconds"] if len(fits) > index and not run.get("error") else None


def summarize(result: dict) -> dict:
    """Per tracked variant: fit times and paired ratios to csv alone (cold and warm), the process time added."""
    runs = result["runs"]
    rows = {}
    for tracked, alone in PAIRS:
        if tracked not in runs or alone not in runs:
            continue
        mine, base = runs[tracked], runs[alone]
        process = [r["wall_s"] if not r["error"] else None for r in mine]
        base_process = [r["wall_s"] if not r["error"] else None for r in base]
        rows[tracked] = {
            "baseline": alone,
            "fit_s": summary_of.stats(_fit(r, 0) for r in mine),
            "baseline_fit_s": summary_of.stats(_fit(r, 0) for r in base),
            "ratio": summary_of.paired([_fit(r, 0) for r in mine], [_fit(r, 0) for r in base], lambda a, b: a / b),
            "warm_fit_s": summary_of.stats(_fit(r, 1) for r in mine),
            "baseline_warm_fit_s": summary_of.stats(_fit(r, 1) for r in base),
            "warm_ratio": summary_of.paired([_fit(r, 1) for r in mine], [_fit(r, 1) for r in base], lambda a, b: a / b),
            "process_added_s": summary_of.paired(process, base_process, lambda a, b: a - b),
            "val_acc": sorted(
                {round(f["val_acc"], 6) for r in mine + base if not r["error"] for f in r["fits"] if f.get("val_acc")}
            ),
            "error": next((r["error"] for r in mine + base if r["error"]), None),
        }
    return {"rows": rows}


def section(result: dict, summary: dict) -> list[str]:
    lines = [
        "## Trackers: csv + TensorBoard + MLflow against csv alone (`trackers`)",
        "",
        f"The `mlp` case (10 epochs, batch 32, a training row every 50 steps), {result['rounds']} alternating rounds, "
        "one process per run. CLI: the tracked runs share a runs root whose mlflow.db exists; fit time from the probe "
        "(FIT_START to FIT_END, before the loggers' end). API: two fits per process, the cold one creating mlflow.db, "
        "the warm one with the trackers imported and the store open; fit time `trainer.fit()`. Ratios paired per round; "
        "process: seconds the tracked process took beyond the csv one.",
        "",
    ]
    rows = [
        [
            label,
            _s(row["baseline_fit_s"]),
            _s(row["fit_s"]),
            _s(row["ratio"], 3, "x"),
            _s(row["baseline_warm_fit_s"]),
            _s(row["warm_fit_s"]),
            _s(row["warm_ratio"], 3, "x"),
            _s(row["process_added_s"], 2),
            " / ".join(f"{a:.4f}" for a in row["val_acc"]) or "-",
        ]
        for label, row in summary["rows"].items()
    ]
    header = ["variant", "csv fit s", "tracked fit s", "ratio", "csv warm s", "tracked warm s", "warm ratio"]
    lines += _table([*header, "process added s", "val acc"], rows)
    errors = [f"- {label}: {row['error'].splitlines()[0]}" for label, row in summary["rows"].items() if row["error"]]
    return lines + [""] + (["Failed runs (results.json has the output):", *errors, ""] if errors else [])
