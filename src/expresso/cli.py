"""The ``expresso`` command.

Start-up is kept cheap: this module imports only argparse, and each command
imports what it needs when it runs, so ``expresso --help`` and
``expresso config`` never import torch.

Bad input (a config problem, a bad argument) prints one clear message and
exits with status 2; ``--debug`` shows the full traceback instead.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

EXIT_BAD_INPUT = 2


def _build_parser() -> argparse.ArgumentParser:
    # --debug works before or after the command; SUPPRESS keeps the subcommand from resetting it.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--debug",
        action="store_true",
        default=argparse.SUPPRESS,
        help="show full tracebacks (train: also autograd anomaly detection)",
    )

    parser = argparse.ArgumentParser(
        prog="expresso",
        description="Configurable experiments for PyTorch: one config, one command, a recorded run.",
    )
    parser.add_argument("--debug", action="store_true", help="show full tracebacks")
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    config = commands.add_parser(
        "config",
        parents=[common],
        help="print the resolved config (validate only)",
        description=(
            "Print the fully resolved config: file references, extends, overrides and interpolations applied. "
            "The printed YAML, saved and loaded again, resolves to itself (JSON writes integer keys as strings)."
        ),
    )
    config.add_argument("config", metavar="CONFIG", help="a .yaml, .yml, .json or .py config file")
    config.add_argument(
        "overrides", nargs="*", metavar="KEY=VALUE", help="overrides: key.sub=value, +new.key=value, ~key"
    )
    config.add_argument("--json", action="store_true", help="print JSON instead of YAML (integer keys become strings)")
    config.add_argument(
        "--check",
        action="store_true",
        help="also import every class and check its arguments (what `expresso train` checks first); shows injected task values",
    )
    config.set_defaults(handler=_config_command)

    graph = commands.add_parser(
        "graph",
        parents=[common],
        help="describe the config's models, graph, losses, optimizers, pipelines and stages (builds nothing)",
        description=(
            "Check the config as `config --check` does, then print its graph in data order with its losses, optimizers, "
            "pipelines and stages; --output also draws it (needs matplotlib: the `plots` extra)."
        ),
    )
    graph.add_argument("config", metavar="CONFIG", help="a .yaml, .yml, .json or .py config file")
    graph.add_argument(
        "overrides", nargs="*", metavar="KEY=VALUE", help="overrides: key.sub=value, +new.key=value, ~key"
    )
    graph.add_argument("--output", metavar="FILE", help="also draw the graph to FILE.svg or FILE.png")
    graph.set_defaults(handler=_lazy("graph", "graph"))

    train = commands.add_parser("train", parents=[common], help="train from a config; creates a run folder")
    train.add_argument("config", metavar="CONFIG")
    train.add_argument("overrides", nargs="*", metavar="KEY=VALUE")
    train.add_argument("--name", help="experiment name (default: the config's name)")
    train.add_argument("--runs-root", help="where run folders go (default: ./runs)")
    train.add_argument(
        "--dev-run",
        type=_dev_run,
        metavar="N",
        help="N batches (an integer) or a fraction 0<N<1 of each split's batches, one epoch, run folder under a scratch root",
    )
    train.add_argument("--offline", action="store_true", help="hosted trackers stay offline")
    train.add_argument("--run-id", help="a fixed run folder name (a job id), so a restarted job finds its run again")
    train.add_argument(
        "--resume-if-exists", action="store_true", help="if the --run-id folder holds an unfinished run, resume it"
    )
    train.add_argument(
        "--force", action="store_true", help="if the --run-id folder holds a run, move it aside and start over"
    )
    train.set_defaults(handler=_lazy("train", "train"))

    resume = commands.add_parser(
        "resume",
        parents=[common],
        help="continue a run where it stopped (KEY=VALUE: with these settings from there on)",
    )
    resume.add_argument("run_dir", metavar="RUN_DIR")
    resume.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="e.g. trainer.max_epochs=20")
    resume.add_argument("--checkpoint", help="a checkpoint file (default: the run's last.ckpt)")
    resume.set_defaults(handler=_lazy("resume", "resume"))

    evaluate = commands.add_parser(
        "eval", parents=[common], help="evaluate a run's checkpoint; writes eval-<split>.json"
    )
    evaluate.add_argument("run_dir", metavar="RUN_DIR")
    evaluate.add_argument("--checkpoint", default="best", help="best, last or a path (default: best)")
    evaluate.add_argument(
        "--split",
        choices=("train", "val", "test"),
        default="test",
        help="the split to evaluate (default: test); every split alike: models in evaluation mode, data in order, nothing updated",
    )
    evaluate.set_defaults(handler=_lazy("evaluate", "evaluate"))

    predict = commands.add_parser("predict", parents=[common], help="write a run's predictions for a split or a file")
    predict.add_argument("run_dir", metavar="RUN_DIR")
    predict.add_argument("--checkpoint", default="best", help="best, last or a path (default: best)")
    predict.add_argument(
        "--input",
        help="raw inputs, one sample per row, as .npy, .csv or .pt; the training dataset's prepare_inputs(raw) turns them into what "
        "the model reads (default: predict the dataset's --split)",
    )
    predict.add_argument(
        "--inputs-prepared",
        action="store_true",
        help="the --input file already holds what the model reads: no prepare_inputs",
    )
    predict.add_argument("--split", choices=("train", "val", "test"), default="test")
    predict.add_argument("--output", help=".csv or .npy (default: RUN_DIR/predictions-<input>.csv)")
    predict.add_argument(
        "extra", nargs="*", metavar="KEY=VALUE", help="extra arguments for the config's `predict` hook"
    )
    predict.set_defaults(handler=_lazy("evaluate", "predict"))

    export = commands.add_parser(
        "export",
        parents=[common],
        help="write a run's model weights to one safetensors file",
        description=(
            "Read a checkpoint (weights only, no code runs) and write every model's tensors to one safetensors file, "
            "keys <model>.<param>, with metadata (expresso and format versions, experiment, epoch, step, model names). "
            "Load it back with expresso.export.load_weights."
        ),
    )
    export.add_argument("run_dir", metavar="RUN_DIR")
    export.add_argument(
        "--checkpoint", default="best", help="best, last or a path (default: best; last when there is no best)"
    )
    export.add_argument(
        "--format", choices=("safetensors",), default="safetensors", help="file format (default: safetensors)"
    )
    export.add_argument(
        "--output", metavar="PATH", help="the file to write (default: RUN_DIR/export/<checkpoint name>.safetensors)"
    )
    export.set_defaults(handler=_lazy("export", "export"))

    runs = commands.add_parser(
        "runs", parents=[common], help="table of runs: status, epochs, best metric, differing settings"
    )
    runs.add_argument("root", nargs="?", metavar="ROOT", help="folder of runs (default: ./runs)")
    runs.set_defaults(handler=_lazy("runs", "runs"))
    return parser


def _dev_run(text: str) -> int | float:
    """A number of batches (an integer >= 1) or a fraction of them (0 < f < 1), as trainer.limit_batches reads them."""
    try:
        value: int | float = int(text)
    except ValueError:
        try:
            value = float(text)
        except ValueError:
            value = 0
    if not (isinstance(value, int) and value >= 1 or isinstance(value, float) and 0 < value < 1):
        raise argparse.ArgumentTypeError(
            f"expected a number of batches (an integer >= 1) or a fraction of them (0 < f < 1), received {text!r}"
        )
    return value


def _lazy(module: str, function: str):
    """A handler that imports its command module only when it runs (keeps --help fast)."""

    def handler(args: argparse.Namespace) -> int:
        import importlib

        return getattr(importlib.import_module(f".commands.{module}", __package__), function)(args)

    return handler


def _config_command(args: argparse.Namespace) -> int:
    from .config import load_config

    config = load_config(args.config, args.overrides, check=args.check)
    if args.check:  # the torch-side rest of the check (device, graph wiring); without --check no torch is imported
        from .assembly import check

        config = check(config)
    sys.stdout.write(config.to_json() + "\n" if args.json else config.to_yaml())
    return 0


def _fix_thread_counts() -> None:
    """Keep MKL and OpenMP from changing their thread counts at run time (unless the user says otherwise).

    Intel lists a fixed thread count with MKL_DYNAMIC and OMP_DYNAMIC false
    among its conditions for run-to-run reproducible results. Both libraries
    read them when torch loads them, so this runs before any torch import.
    """
    for name in ("MKL_DYNAMIC", "OMP_DYNAMIC"):
        os.environ.setdefault(name, "FALSE")


def main(argv: Sequence[str] | None = None) -> int:
    _fix_thread_counts()
    parser = _build_parser()
    args, rest = parser.parse_known_args(argv)
    # KEY=VALUE items after a flag (`config C --json a=1`) are still overrides.
    spill = "extra" if hasattr(args, "extra") else "overrides"
    if (
        rest
        and hasattr(args, spill)
        and all(not item.startswith("-") or item.startswith("--") and "=" in item for item in rest)
    ):
        getattr(args, spill).extend(rest)
    elif rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    if args.version:
        from . import __version__

        print(f"expresso {__version__}")
        return 0
    if args.command is None:
        parser.print_help()
        return EXIT_BAD_INPUT
    try:
        code = args.handler(args)
        if sys.stdout is not None:  # None under `expresso ... >&-`
            sys.stdout.flush()  # a piped stdout is buffered: its broken pipe shows here, not at exit
        return code
    except BrokenPipeError:
        # `expresso runs | head`: the reader left. End quietly, as a tool killed by SIGPIPE does, with the status
        # a shell gives one (128 + 13); stdout goes to devnull so the flush at exit does not fail again.
        # A broken pipe elsewhere (a worker, a socket) while stdout is fine is a real error.
        if not _stdout_closed():
            raise
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_STDOUT_CLOSED
    except Exception as exc:
        if args.debug or not _is_bad_input(exc):
            raise
        print(f"expresso: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT


EXIT_STDOUT_CLOSED = 141  # 128 + SIGPIPE: what a shell reports for the writer in `cat big | head`


def _stdout_closed() -> bool:
    """Whether stdout is a pipe nobody reads any more (poll says POLLERR); True where poll cannot tell."""
    try:
        import select

        poller = select.poll()
        poller.register(sys.stdout.fileno(), select.POLLOUT)
        return any(events & (select.POLLERR | select.POLLHUP) for _, events in poller.poll(0))
    except (AttributeError, OSError, ValueError):  # no poll (Windows), no file descriptor
        return True


def _is_bad_input(exc: Exception) -> bool:
    """Errors that mean "fix your input" (exit 2, one message), as opposed to bugs (traceback)."""
    from .commands import UsageError
    from .config import ConfigError

    if isinstance(exc, (ConfigError, UsageError)):
        return True
    bad = [("expresso.engine.checkpoint_io", "CheckpointError"), ("expresso.runs.record", "RecordError")]
    return any(name in sys.modules and isinstance(exc, getattr(sys.modules[name], error)) for name, error in bad)
