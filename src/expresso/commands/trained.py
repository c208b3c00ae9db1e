"""What ``expresso eval`` and ``expresso predict`` share: a run's checkpoint loaded into a trainer that does not train."""

from __future__ import annotations

import sys
from argparse import Namespace
from pathlib import Path

from ..runs.folder import RunFolder, checkpoint_path, open_run


def load_trained(args: Namespace):
    """The run folder, the checkpoint file, the run's config (checked) and a trainer holding the checkpoint's weights."""
    from ..assembly import build_trainer, check
    from ..config import load_config
    from ..config.callables import add_project_to_path
    from ..runs.record import RecordError, read_record

    run_dir = open_run(args.run_dir)
    try:
        root = read_record(RunFolder(run_dir).record).get("project_root")
    except RecordError as exc:  # the config and the checkpoints are what eval and predict need; the record is not
        print(f"expresso: warning: {exc}; the project's code is imported from the working directory", file=sys.stderr)
        root = None
    add_project_to_path(Path(root or "."))
    checkpoint = checkpoint_path(run_dir, args.checkpoint)
    config = check(load_config(RunFolder(run_dir).config, check=True))
    trainer = build_trainer(config, run_dir, training=False)
    trainer.load_checkpoint(checkpoint, weights_only=True)
    return run_dir, checkpoint, config, trainer
