"""``expresso eval RUN_DIR``: a finished (or stopped) run's checkpoint evaluated on one split; writes eval-<split>.json."""

from __future__ import annotations

import argparse
import json

from ..runs.atomic import atomic_write
from ..runs.folder import RunFolder
from . import UsageError
from .trained import load_trained


def add_parser(subparsers: argparse._SubParsersAction, common: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "eval", parents=[common], help="evaluate a run's checkpoint; writes eval-<split>.json"
    )
    parser.add_argument("run_dir", metavar="RUN_DIR")
    parser.add_argument("--checkpoint", default="best", help="best, last or a path (default: best)")
    parser.add_argument(
        "--split",
        choices=("train", "val", "test"),
        default="test",
        help="the split to evaluate (default: test); every split alike: models in evaluation mode, data in order, nothing updated",
    )
    return parser


def run(args: argparse.Namespace) -> int:
    run_dir, checkpoint, _, trainer = load_trained(args)
    if not trainer.has_data(args.split):
        raise UsageError(f"{run_dir}: the config's dataset has no {args.split!r} split")
    values = {"train": trainer.evaluate_train, "val": trainer.validate, "test": trainer.test}[args.split]()
    out = RunFolder(run_dir).eval_result(args.split)
    text = json.dumps({"checkpoint": str(checkpoint), "split": args.split, "metrics": values}, indent=2) + "\n"
    atomic_write(out, text, durable=False)  # not durable: `expresso eval` again recomputes it
    width = max(map(len, values), default=6)
    print(f"{'metric':<{width}}  value")
    for key, value in values.items():
        print(f"{key:<{width}}  {value:.6g}")
    print(f"written: {out}")
    return 0
