"""``expresso report PATH --out report.html``: a sweep's (or a folder of runs') results as one self-contained HTML page.

PATH is a sweep folder (``<runs root>/<name>/sweep-<id>``), an experiment
folder or a runs root: every sweep under it gets its section, and the runs
outside sweeps one more (analysis/report.py writes the page). matplotlib
(the ``plots`` extra) is imported only when the command runs; torch never is.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..config.loggers import missing_extra
from . import UsageError

SUFFIXES = (".html", ".htm")


def add_parser(subparsers: argparse._SubParsersAction, common: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "report",
        parents=[common],
        help="one self-contained HTML page of a sweep's or a folder's runs: table, curves, parameters, failures",
    )
    parser.add_argument("path", metavar="PATH", help="a sweep folder, an experiment folder or a runs root")
    parser.add_argument("--out", default="report.html", help="the page to write (default: report.html)")
    parser.add_argument(
        "--metric", help="score the trials by this metric, e.g. val/loss (default: the sweep's objective)"
    )
    return parser


def run(args: argparse.Namespace) -> int:
    out = Path(args.out)
    if out.suffix.lower() not in SUFFIXES:  # before anything is read or drawn
        raise UsageError(f"--out {args.out}: expected a file name ending in .html")
    message = missing_extra("matplotlib", "plots", "expresso report")
    if message:
        raise UsageError(message)
    from ..analysis.report import write_report

    try:
        groups = write_report(args.path, out, args.metric)
    except OSError as exc:
        raise UsageError(f"{out}: cannot be written ({exc.strerror or exc})") from None
    trials = sum(len(group.trials) for group in groups)
    print(f"written: {out} ({len(groups)} group(s), {trials} trial(s))")
    return 0
