"""``expresso runs``: a table of the runs under a folder, with the settings that set them apart."""

from __future__ import annotations

import argparse
import sys
from argparse import Namespace
from pathlib import Path
from typing import Any

from . import UsageError
from .table import distinct_short, print_table, text

COMPARE = "compare"  # `expresso runs compare RUN...`; a folder of runs named so is `expresso runs ./compare`
MAX_HPARAMS = 5  # more columns than this and the table wraps; the rest are named in a note below it
REASON_WIDTH = 60


def add_parser(subparsers: argparse._SubParsersAction, common: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "runs",
        parents=[common],
        help="table of runs: status, epochs, best metric, differing settings; `runs compare RUN...`: side by side",
        usage="expresso runs [ROOT]\n       expresso runs compare RUN RUN [RUN ...] [--all] [--runs-root ROOT]",
        description=(
            "`expresso runs [ROOT]`: one line per run under ROOT (default ./runs). "
            "`expresso runs compare RUN RUN...`: the settings that differ between the runs and their metrics, "
            "a column per run; RUN is a run folder, or a run id under --runs-root."
        ),
    )
    parser.add_argument("root", nargs="?", metavar="ROOT", help="folder of runs (default: ./runs), or `compare`")
    parser.add_argument("runs", nargs="*", metavar="RUN", help=argparse.SUPPRESS)
    parser.add_argument("--all", action="store_true", help="runs compare: every setting, not only those that differ")
    parser.add_argument("--runs-root", help="runs compare: where to look for a RUN given by its id (default: ./runs)")
    return parser


def run(args: Namespace) -> int:
    from ..analysis.read import read_runs, varying
    from ..runs.folder import RunFolder
    from ..runs.record import shown_status

    if args.root == COMPARE:
        from . import runs_compare

        return runs_compare.run(args)
    for flag in ("--all", "--runs-root"):
        if getattr(args, flag[2:].replace("-", "_")):
            raise UsageError(
                f"runs: {flag} is an option of `expresso runs compare RUN RUN...`, not of `expresso runs ROOT`"
            )
    if args.runs:
        given = " ".join([args.root, *args.runs])
        raise UsageError(f"runs: received {given}; expected one ROOT, or `expresso runs compare RUN RUN...`")
    root = Path(args.root or "runs")
    found, unreadable = read_runs(root)
    for path in unreadable:
        print(f"expresso: skipped {path}: unreadable {RunFolder.RECORD} or {RunFolder.CONFIG}", file=sys.stderr)
    if not found:
        print(f"no runs under {root}")
        return 0
    varying_keys = varying([each.config for each in found])
    shown, hidden = varying_keys[:MAX_HPARAMS], varying_keys[MAX_HPARAMS:]
    hparams = [distinct_short([text(each.config.get(key)) for each in found]) for key in shown]
    statuses = [shown_status(each.record) for each in found]
    reasons = [failure_reason(each.record) if status == "failed" else None for each, status in zip(found, statuses)]
    rows = [["experiment", "run id", "status", "epochs", "best", *shown, *(["reason"] if any(reasons) else [])]]
    for i, each in enumerate(found):
        summary = each.record.get("summary") or {}
        best = summary.get("best")
        best_text = f"{summary.get('monitor')}={best:.4g}" if isinstance(best, (int, float)) else "-"
        rows.append(
            [each.experiment, each.run_id, statuses[i], str(summary.get("epochs", 0)), best_text]
            + [column[i] for column in hparams]
            + ([reasons[i] or "-"] if any(reasons) else [])
        )
    print_table(rows)
    if hidden:
        print(f"({len(hidden)} more differing setting{'s' if len(hidden) > 1 else ''} not shown: {', '.join(hidden)})")
    return 0


def failure_reason(record: dict[str, Any]) -> str | None:
    """``KeyError: 'val/accuracy'``: run.json's ``error`` on one line, cut to REASON_WIDTH; None without one."""
    error = record.get("error")
    if not isinstance(error, dict) or not isinstance(error.get("type"), str):
        return None
    message = error.get("message")
    first_line = message.strip().split("\n")[0] if isinstance(message, str) else ""
    line = (
        " ".join(f"{error['type']}: {first_line}".split()) if first_line else error["type"]
    )  # single spaces: columns stay columns
    return line if len(line) <= REASON_WIDTH else line[: REASON_WIDTH - 3] + "..."
