"""``expresso runs``: a table of the runs under a folder, with the settings that set them apart."""

from __future__ import annotations

import sys
from argparse import Namespace
from pathlib import Path
from typing import Any

from . import UsageError

MAX_HPARAMS = 5


def runs(args: Namespace) -> int:
    import yaml

    from ..config.files import parse_yaml
    from ..runs.record import read_record, shown_status

    root = Path(args.root or "runs")
    try:
        found_root = root.is_dir()
    except (OSError, ValueError) as exc:  # a name too long, a NUL byte
        raise UsageError(f"{str(root)[:200]}: not a folder of runs ({getattr(exc, 'strerror', None) or exc})") from None
    if not found_root:
        raise UsageError(f"{root}: no such folder of runs")
    found, unreadable = [], []
    for record_path in sorted(root.glob("**/run.json")):
        try:
            record = read_record(record_path)
            config = parse_yaml((record_path.parent / "config.yaml").read_text())
        except (OSError, ValueError, yaml.YAMLError):  # RecordError is a ValueError
            unreadable.append(record_path.parent)
            continue
        found.append((record_path.parent, record, _flatten(config if isinstance(config, dict) else {})))
    for folder in unreadable:
        print(f"expresso: skipped {folder}: unreadable run.json or config.yaml", file=sys.stderr)
    if not found:
        print(f"no runs under {root}")
        return 0
    varying = _varying([flat for _, _, flat in found])
    header = ["experiment", "run id", "status", "epochs", "best", *varying]
    rows = [header]
    for run_dir, record, flat in found:
        summary = record.get("summary") or {}
        best = summary.get("best")
        best_text = f"{summary.get('monitor')}={best:.4g}" if isinstance(best, (int, float)) else "-"
        rows.append(
            [str(record.get("name") or "?"), str(record.get("run_id") or run_dir.name), shown_status(record), str(summary.get("epochs", 0)), best_text]
            + [_short(flat.get(key)) for key in varying]
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())
    return 0


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
    varying = [key for key in keys if key not in skip and len({repr(flat.get(key)) for flat in configs}) > 1]
    return varying[:MAX_HPARAMS]


def _short(value: Any) -> str:
    text = "-" if value is None else str(value)
    return text if len(text) <= 32 else "..." + text[-29:]
