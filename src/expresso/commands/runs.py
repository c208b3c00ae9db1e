"""``expresso runs``: a table of the runs under a folder, with the settings that set them apart."""

from __future__ import annotations

import argparse
import sys
from argparse import Namespace
from pathlib import Path
from typing import Any

from . import UsageError

MAX_HPARAMS = 5  # more columns than this and the table wraps; the rest are named in a note below it
VALUE_WIDTH = 32  # a longer setting is shortened in the middle, unless that would make two values look alike
REASON_WIDTH = 60


def add_parser(subparsers: argparse._SubParsersAction, common: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "runs", parents=[common], help="table of runs: status, epochs, best metric, differing settings"
    )
    parser.add_argument("root", nargs="?", metavar="ROOT", help="folder of runs (default: ./runs)")
    return parser


def run(args: Namespace) -> int:
    import yaml

    from ..config.files import read_written_yaml
    from ..runs.folder import RunFolder, find_runs
    from ..runs.record import read_record, shown_status

    root = Path(args.root or "runs")
    try:
        found_root = root.is_dir()
    except (OSError, ValueError) as exc:  # a name too long, a NUL byte
        raise UsageError(f"{str(root)[:200]}: not a folder of runs ({getattr(exc, 'strerror', None) or exc})") from None
    if not found_root:
        raise UsageError(f"{root}: no such folder of runs")
    found, unreadable = [], []
    for folder in find_runs(root):
        try:
            record = read_record(folder.record)
            config = read_written_yaml(folder.config.read_text())
            flat = _flatten(config if isinstance(config, dict) else {})
        except (
            OSError,
            ValueError,
            yaml.YAMLError,
            RecursionError,
        ):  # RecordError is a ValueError; RecursionError: a config nested past reason
            unreadable.append(folder.path)
            continue
        found.append((folder.path, record, flat))
    for path in unreadable:
        print(f"expresso: skipped {path}: unreadable {RunFolder.RECORD} or {RunFolder.CONFIG}", file=sys.stderr)
    if not found:
        print(f"no runs under {root}")
        return 0
    varying = _varying([flat for _, _, flat in found])
    shown, hidden = varying[:MAX_HPARAMS], varying[MAX_HPARAMS:]
    hparams = [distinct_short([_text(flat.get(key)) for _, _, flat in found]) for key in shown]
    statuses = [shown_status(record) for _, record, _ in found]
    reasons = [
        failure_reason(record) if status == "failed" else None for (_, record, _), status in zip(found, statuses)
    ]
    rows = [["experiment", "run id", "status", "epochs", "best", *shown, *(["reason"] if any(reasons) else [])]]
    for i, (run_dir, record, _) in enumerate(found):
        summary = record.get("summary") or {}
        best = summary.get("best")
        best_text = f"{summary.get('monitor')}={best:.4g}" if isinstance(best, (int, float)) else "-"
        rows.append(
            [
                str(record.get("name") or "?"),
                str(record.get("run_id") or run_dir.name),
                statuses[i],
                str(summary.get("epochs", 0)),
                best_text,
            ]
            + [column[i] for column in hparams]
            + ([reasons[i] or "-"] if any(reasons) else [])
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())
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
    text = (
        " ".join(f"{error['type']}: {first_line}".split()) if first_line else error["type"]
    )  # single spaces: columns stay columns
    return text if len(text) <= REASON_WIDTH else text[: REASON_WIDTH - 3] + "..."


def _flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(tree, dict):
        out: dict[str, Any] = {}
        for key, value in tree.items():
            out.update(_flatten(value, f"{prefix}{key}."))
        return out
    return {prefix[:-1]: tree}


def _varying(configs: list[dict[str, Any]]) -> list[str]:
    """Config keys whose value differs between the runs: the hyperparameters worth a column."""
    keys = list(dict.fromkeys(key for flat in configs for key in flat))
    skip = ("name",)
    return [key for key in keys if key not in skip and len({repr(flat.get(key)) for flat in configs}) > 1]


def _text(value: Any) -> str:
    return "-" if value is None else str(value)


def distinct_short(texts: list[str], width: int = VALUE_WIDTH) -> list[str]:
    """A column's values shortened in the middle (both ends kept); in full if that would make two different ones look alike."""
    short = [_middle(text, width) for text in texts]
    return short if len(set(short)) == len(set(texts)) else texts


def _middle(text: str, width: int) -> str:
    if len(text) <= width:
        return text
    head = (width - 3) // 2
    return text[:head] + "..." + text[len(text) - (width - 3 - head) :]
