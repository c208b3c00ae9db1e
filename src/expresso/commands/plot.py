"""``expresso plot RUN...``: the learning curves of one or more runs, from their metrics.csv, in one picture.

For people who run no tracker: the training loss per step and per epoch,
the validation values per epoch, one colour per run (runs/curves.py draws
it; a fit leaves the same figure of its own run as curves.png). matplotlib
(the ``plots`` extra) is imported only here, when the command runs; torch
never is.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ..config.loggers import missing_extra
from ..runs.folder import RunFolder
from . import UsageError


def add_parser(subparsers: argparse._SubParsersAction, common: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "plot", parents=[common], help=f"learning curves of runs from their {RunFolder.HISTORY}, one line per run"
    )
    parser.add_argument("runs", nargs="+", metavar="RUN", help="run folders (runs/<experiment>/<run id>)")
    parser.add_argument(
        "--metric", help="draw this one metric, e.g. val/acc (default: the losses and each run's trainer.monitor)"
    )
    parser.add_argument(
        "--output",
        default=RunFolder.CURVES,
        help=f"the picture to write: .png, .pdf or .svg (default: {RunFolder.CURVES} in the working directory)",
    )
    return parser


def run(args: argparse.Namespace) -> int:
    from ..runs.curves import FORMATS, save

    output = Path(args.output)
    if output.suffix.lower().lstrip(".") not in FORMATS:  # before the runs are read and matplotlib imported
        raise UsageError(
            f"--output {args.output}: expected a file name ending in {', '.join('.' + f for f in FORMATS)}"
        )
    fig = draw(args.runs, args.metric)
    try:
        save(fig, output)
    except OSError as exc:
        raise UsageError(f"{output}: cannot be written ({exc.strerror or exc})") from None
    print(f"written: {output}")
    return 0


def draw(runs: list[str], metric: str | None = None) -> Any:
    """The matplotlib Figure ``expresso plot`` writes: the runs at these paths, ``metric`` or the default panels."""
    message = missing_extra("matplotlib", "plots", "expresso plot")
    if message:
        raise UsageError(message)
    from ..runs.curves import figure, read_history

    folders = [RunFolder.open(path) for path in runs]  # not a run folder: exit 2 naming it
    names = [_name(folder) for folder in folders]
    labels = [name if names.count(name) == 1 else f"{name}/{folder.path.name}" for name, folder in zip(names, folders)]
    # a metrics.csv that cannot be drawn is a HistoryError: bad input, exit 2 with its one line
    histories = [read_history(folder.history, label, _monitor(folder)) for folder, label in zip(folders, labels)]
    return figure(histories, metric)


def _name(folder: RunFolder) -> str:
    """The run's experiment name as its record has it (the folder above the run id, if the record cannot say)."""
    from ..runs.record import RecordError, read_record

    try:
        name = read_record(folder.record).get("name")
    except RecordError:
        name = None
    return name if isinstance(name, str) and name else folder.path.parent.name


def _monitor(folder: RunFolder) -> str | None:
    """The run's ``trainer.monitor`` from its config.yaml (None if it cannot be read)."""
    import yaml

    from ..config.files import read_written_yaml

    try:
        config = read_written_yaml(folder.config.read_text(encoding="utf-8"))
    except (OSError, ValueError, yaml.YAMLError):
        return None
    trainer = config.get("trainer") if isinstance(config, dict) else None
    monitor = trainer.get("monitor") if isinstance(trainer, dict) else None
    return monitor if isinstance(monitor, str) else None
