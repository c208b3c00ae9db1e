"""``expresso export``: a run's model weights as one safetensors file (see expresso/export.py for the file).

The checkpoint is read with ``weights_only=True`` and checked before
anything is written: a bad run folder, a missing checkpoint or one that is
not an expresso checkpoint exits with status 2, one line naming the file,
and leaves no export file behind.
"""

from __future__ import annotations

import argparse
from argparse import Namespace
from pathlib import Path

from ..runs.folder import checkpoint_path, open_run
from . import UsageError


def add_parser(subparsers: argparse._SubParsersAction, common: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "export",
        parents=[common],
        help="write a run's model weights to one safetensors file",
        description=(
            "Read a checkpoint (weights only, no code runs) and write every model's tensors to one safetensors file, "
            "keys <model>.<param>, with metadata (expresso and format versions, experiment, epoch, step, model names). "
            "Load it back with expresso.export.load_weights."
        ),
    )
    parser.add_argument("run_dir", metavar="RUN_DIR")
    parser.add_argument(
        "--checkpoint", default="best", help="best, last or a path (default: best; last when there is no best)"
    )
    parser.add_argument(
        "--format", choices=("safetensors",), default="safetensors", help="file format (default: safetensors)"
    )
    parser.add_argument(
        "--output", metavar="PATH", help="the file to write (default: RUN_DIR/export/<checkpoint name>.safetensors)"
    )
    return parser


def run(args: Namespace) -> int:
    from ..engine.checkpoints.weights import SUFFIX, WeightsError, checkpoint_weights, save_weights
    from ..runs.folder import RunFolder

    run_dir = open_run(args.run_dir)
    checkpoint = checkpoint_path(run_dir, args.checkpoint)
    output = Path(args.output) if args.output else RunFolder(run_dir).exports / f"{checkpoint.stem}{SUFFIX}"
    if output.is_dir():
        raise UsageError(
            f"{output}: is a folder; --output takes a file path, e.g. {output / (checkpoint.stem + SUFFIX)}"
        )
    _refuse_foreign(run_dir, checkpoint)
    models, metadata = checkpoint_weights(
        checkpoint, experiment=_experiment(run_dir)
    )  # CheckpointError: exit 2, nothing written
    try:
        written = save_weights(models, output, metadata)
    except WeightsError as exc:
        raise UsageError(f"{checkpoint}: cannot export: {exc}") from None
    except OSError as exc:
        raise UsageError(f"{output}: cannot write ({exc.strerror or exc})") from None
    tensors, count = len(written.tensors), len(written.models)
    print(f"written: {output} ({tensors} {_plural(tensors, 'tensor')}, {count} {_plural(count, 'model')})")
    return 0


def _refuse_foreign(run_dir: Path, checkpoint: Path) -> None:
    """A ``--checkpoint PATH`` outside the run's checkpoints folder must be one the run could have written.

    The export is labelled with the run's experiment and lands in its folder,
    so a checkpoint of another experiment is refused even where its models
    have the very shapes of the run's: a structure that fits does not make
    the weights this run's. The checkpoint's config (every checkpoint holds
    the one it was trained with) is compared with the run's config.yaml on
    what no run changes while it trains, the keys ``expresso resume``
    refuses to change (name, models, data, seed...); a difference a resume
    applies (a learning rate, more epochs) may be the run's own later
    setting, so it is no evidence.
    """
    from ..config import load_config
    from ..config.errors import format_key
    from ..engine.checkpoints.io import load_checkpoint
    from ..runs.folder import RunFolder
    from .resume_changes import diff, refusal

    folder = RunFolder(run_dir)
    if checkpoint.resolve().parent == folder.checkpoints.path.resolve():
        return
    trained_with = load_checkpoint(checkpoint).get("config")  # CheckpointError: exit 2, one line
    if not isinstance(trained_with, dict):
        raise UsageError(
            f"{checkpoint}: records no config, so nothing shows it is a checkpoint of {run_dir}; "
            "export a checkpoint from its own run folder"
        )
    run_config = load_config(folder.config).to_dict()
    theirs, ours = trained_with.get("name"), run_config.get("name")
    if theirs != ours:
        raise UsageError(
            f"{checkpoint}: a checkpoint of experiment {theirs!r}, not of {run_dir} (experiment {ours!r}); "
            "export it from its own run folder"
        )
    fixed = [format_key(path) for path in diff(trained_with, run_config) if refusal(path)]
    if fixed:
        raise UsageError(
            f"{checkpoint}: a checkpoint of another run of {ours!r}, not of {run_dir}: its config differs from the run's "
            f"{folder.CONFIG} in {', '.join(fixed)}, which no run changes while it trains; export it from its own run folder"
        )


def _experiment(run_dir: Path) -> str | None:
    """The run's experiment name from run.json (None if unreadable: the checkpoint's config names it then)."""
    from ..runs.folder import RunFolder
    from ..runs.record import RecordError, read_record

    try:
        return read_record(RunFolder(run_dir).record).get("name")  # a str or None: read_record checks its kind
    except RecordError:
        return None


def _plural(count: int, word: str) -> str:
    return word if count == 1 else word + "s"
