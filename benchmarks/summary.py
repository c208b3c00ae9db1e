"""Derived numbers: medians, min-max, paired ratios and the issue's targets, computed from raw runs.

Why apart from the measuring code: each case keeps its raw measurements
(every run of every round, in ``results.json``) and everything derived is
computed here, so a reader can recompute any cell of the report from the
JSON. Ratios are paired: each round's run divided by the same round's
hand-loop run (made moments apart), then the median of those ratios;
min-max shows their spread.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable

# Issue (performance) targets.
TARGETS = {  # issue "Performance, second round": not slower than the hand loop with every default on
    "mlp": {"ratio": 1.00},
    "cnn": {"ratio": 1.02},
    "job": {"ratio": 1.01},
    "rss_ratio": 1.05,
    "first_step_over_torch_s": 1.5,
    "process_over_hand_s": 0.3,  # a case of one fit per process: `expresso train` start to exit, over the hand script's
    "trackers_ratio": 1.05,  # issue: trackers; the CLI fit with csv + TensorBoard + MLflow over csv alone
}
TRACKED_CLI_ROW = "CLI, loggers [csv, tensorboard, mlflow]"  # tracker_case.CLI_TRACKED
EXPRESSO_ROWS = ("expresso CLI", "expresso API")
FLOOR_ROW = "import torch (start-up floor)"
ACCURACY_TOLERANCE = 1e-6


def stats(values: Iterable[float | None]) -> dict | None:
    values = [v for v in values if v is not None]
    if not values:
        return None
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "n": len(values)}


def paired(numerators: list[float | None], denominators: list[float | None], op) -> dict | None:
    return stats(
        op(a, b) if a is not None and b is not None and b > 0 else None for a, b in zip(numerators, denominators)
    )


def _fit(run: dict, index: int) -> float | None:
    fits = run.get("fits") or []
    return fits[index]["seconds"] if len(fits) > index and not run.get("error") else None


def _outside_fit(runs: list[dict]) -> list[float | None]:
    """Each process's time outside its first fit: start-up, imports, building, the final evaluation, records, exit."""
    return [r["wall_s"] - fit if (fit := _fit(r, 0)) is not None else None for r in runs]


def summarize_training(result: dict) -> dict:
    """Per variant: fit times (cold, warm), paired ratios, steps/s, first step, peak RSS, accuracies."""
    runs = result["runs"]
    labels = list(runs)
    baseline = next((label for label in labels if label != FLOOR_ROW), None)
    floor = [r["wall_s"] if not r["error"] else None for r in runs.get(FLOOR_ROW, [])]
    base_cold = [_fit(r, 0) for r in runs.get(baseline, [])]
    base_warm = [_fit(r, 1) for r in runs.get(baseline, [])]
    base_first = [r["first_step_s"] if not r["error"] else None for r in runs.get(baseline, [])]
    base_process = [r["wall_s"] if not r["error"] else None for r in runs.get(baseline, [])]
    base_rss = stats(r["peak_rss_mb"] for r in runs.get(baseline, []) if not r["error"])
    rows = {}
    for label in labels:
        mine = runs[label]
        ok = [r for r in mine if not r["error"]]
        cold = [_fit(r, 0) for r in mine]
        warm = [_fit(r, 1) for r in mine]
        first = [r["first_step_s"] if not r["error"] else None for r in mine]
        cold_stats = stats(cold)
        steps = next((r["fits"][0]["steps"] for r in ok if r["fits"]), None)
        rss = stats(r["peak_rss_mb"] for r in ok)
        rows[label] = {
            "fit_s": cold_stats,
            "warm_fit_s": stats(warm),
            "ratio": paired(cold, base_cold, lambda a, b: a / b),
            "warm_ratio": paired(warm, base_warm, lambda a, b: a / b),
            "steps": steps,
            "steps_per_s": steps / cold_stats["median"] if steps and cold_stats else None,
            "first_step_s": stats(first),
            "first_step_over_torch_s": paired(first, floor, lambda a, b: a - b) if floor else None,
            "first_step_over_hand_s": paired(first, base_first, lambda a, b: a - b),
            "process_s": stats(r["wall_s"] for r in ok),
            "process_over_hand_s": paired(
                [r["wall_s"] if not r["error"] else None for r in mine], base_process, lambda a, b: a - b
            ),
            # the process difference split in two: the fit's own, and the rest (start-up, final evaluation, records, exit)
            "fit_over_hand_s": paired(cold, base_cold, lambda a, b: a - b),
            "outside_fit_over_hand_s": paired(
                _outside_fit(mine), _outside_fit(runs.get(baseline, [])), lambda a, b: a - b
            ),
            "peak_rss_mb": rss,
            "rss_ratio": rss["median"] / base_rss["median"] if rss and base_rss else None,
            "val_acc": sorted({round(f["val_acc"], 6) for r in ok for f in r["fits"] if f.get("val_acc") is not None}),
            "threads": sorted({f.get("threads") for r in ok for f in r["fits"]}),
            "fetch": sorted({f["fetch"] for r in ok for f in r["fits"] if f.get("fetch")}),
            "failed": len(mine) - len(ok),
            "error": next((r["error"] for r in mine if r["error"]), None),
        }
    accuracies = {acc for label, row in rows.items() for acc in row["val_acc"]}
    agree = bool(accuracies) and max(accuracies) - min(accuracies) <= ACCURACY_TOLERANCE
    return {"baseline": baseline, "rows": rows, "accuracies_agree": agree}


def summarize_imports(result: dict) -> dict:
    """Process times (and their paired difference to ``import torch``); in-process torch and added-to-torch times."""
    runs = result["runs"]
    base = [r["seconds"] if not r["error"] else None for r in runs.get(result["baseline"], [])]
    rows = {}
    for name, mine in runs.items():
        ok = [r for r in mine if not r["error"]]
        seconds = [r["seconds"] if not r["error"] else None for r in mine]
        rows[name] = {
            "seconds": stats(seconds),
            "process_over_torch_s": paired(seconds, base, lambda a, b: a - b),
            "torch_s": stats(r["torch_s"] for r in ok),
            "added_s": stats(r["added_s"] for r in ok),
            "peak_rss_mb": stats(r["peak_rss_mb"] for r in ok),
        }
    return {"rows": rows}


def summarize_checkpoint(result: dict) -> dict:
    if "runs" not in result:
        return {"rows": {}}
    runs = result["runs"]
    base = [r.get("seconds") for r in runs["torch.save"]]
    rows = {}
    for variant, mine in runs.items():
        seconds = [r.get("seconds") for r in mine]
        rows[variant] = {
            "seconds": stats(seconds),
            "blocked_s": stats(r.get("blocked_s") for r in mine),
            "ratio": paired(seconds, base, lambda a, b: a / b),
            "verified": all(r.get("verified") for r in mine),
            "error": next((r["error"] for r in mine if r.get("error")), None),
        }
    return {"rows": rows}


def targets(results: dict, summary: dict) -> list[dict]:
    """Every issue target that this session measured, with the measured value and a verdict."""
    found = []

    def add(what: str, value: float | None, limit: float, unit: str = "") -> None:
        found.append(
            {"target": what, "value": value, "limit": limit, "unit": unit, "ok": value is not None and value <= limit}
        )

    for case in ("mlp", "cnn", "job"):
        rows = summary.get(case, {}).get("rows", {})
        for label in EXPRESSO_ROWS:
            row = rows.get(label)
            if row is None:
                continue
            add(
                f"{case}: {label} fit time / hand loop", (row["ratio"] or {}).get("median"), TARGETS[case]["ratio"], "x"
            )
            add(f"{case}: {label} peak RSS / hand loop", row["rss_ratio"], TARGETS["rss_ratio"], "x")
        cli = rows.get("expresso CLI")
        if cli is not None and results.get(case, {}).get("case", {}).get("fits") == 1:  # the hand script fits once too
            add(
                f"{case}: `expresso train` process (start to exit) minus the hand-written script's",
                (cli["process_over_hand_s"] or {}).get("median"),
                TARGETS["process_over_hand_s"],
                "s",
            )
        if cli is not None:
            add(
                f"{case}: `expresso train` to first step, beyond import torch",
                (cli["first_step_over_torch_s"] or {}).get("median"),
                TARGETS["first_step_over_torch_s"],
                "s",
            )
    imports = summary.get("imports")
    if imports and "target" in results.get("imports", {}):
        name, limit = results["imports"]["target"]
        add(
            f"{name}: added to import torch (in-process)",
            (imports["rows"].get(name, {}).get("added_s") or {}).get("median"),
            limit,
            "s",
        )
    tracked = summary.get("trackers", {}).get("rows", {}).get(TRACKED_CLI_ROW)
    if tracked is not None:
        add(
            "trackers: CLI fit with csv + TensorBoard + MLflow / csv alone",
            (tracked["ratio"] or {}).get("median"),
            TARGETS["trackers_ratio"],
            "x",
        )
    checkpoint = summary.get("checkpoint")
    if checkpoint:
        for variant in ("save_atomic",):
            row = checkpoint["rows"].get(variant)
            if row:
                add(
                    f"checkpoint: {variant} / torch.save",
                    (row["ratio"] or {}).get("median"),
                    results["checkpoint"]["target"],
                    "x",
                )
    return found
