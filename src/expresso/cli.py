"""The ``expresso`` command.

Each command is a module of ``expresso.commands`` with its parser
(``add_parser``) and its handler (``run``); this module composes them.
Start-up is kept cheap: a command module imports only the standard library
at its top and what it needs (torch) when it runs, so ``expresso --help``
and ``expresso config`` never import torch.

Bad input (a config problem, a bad argument: any ``expresso.errors.BadInput``)
prints one clear message and exits with status 2; ``--debug`` shows the full
traceback instead.
"""

from __future__ import annotations

import argparse
import atexit
import gc
import os
import sys
from collections.abc import Sequence

from . import lean_imports
from .commands import config, evaluate, export, graph, new, plot, predict, report, resume, runs, sweep, train
from .commands.tracking import redacted
from .errors import BadInput
from .heap import steady_heap

EXIT_BAD_INPUT = 2
_exit_registered = False  # whether main registered _collect_once_at_exit in this process
# Each command is a module with add_parser(subparsers, common) and run(args) -> int; `expresso --help` lists them in this order.
COMMANDS = (config, graph, train, sweep, resume, evaluate, predict, export, runs, plot, report, new)


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
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for command in COMMANDS:
        command.add_parser(subparsers, common).set_defaults(handler=command.run)
    return parser


def _fix_thread_counts() -> None:
    """Keep MKL and OpenMP from changing their thread counts at run time (unless the user says otherwise).

    Intel lists a fixed thread count with MKL_DYNAMIC and OMP_DYNAMIC false
    among its conditions for run-to-run reproducible results. Both libraries
    read them when torch loads them, so this runs before any torch import.
    """
    for name in ("MKL_DYNAMIC", "OMP_DYNAMIC"):
        os.environ.setdefault(name, "FALSE")


def _collect_once_at_exit() -> None:
    """The garbage collector's exit work done once, not over and over while the interpreter tears its modules down.

    A command that imported torch tracks a few hundred thousand objects, and
    the interpreter's shutdown walks all of them in each of its full
    collections: 0.6-0.9 s between the last exit handler and the process's
    end on the 2-core test machine, after `import torch`, an optimizer and
    expresso's imports (0.45 s of it with torch and the optimizer alone).
    Here: one collection (garbage in reference cycles is finalized as
    before: a file in a cycle is still flushed), then ``gc.freeze``, so the
    shutdown's collections skip what is left, which the module teardown
    frees by reference counting as before; 0.2-0.3 s in all. Registered
    first, so it runs last of the exit handlers (after logging's flush, the
    checkpoints' fsyncs and leaving a process group, each registered later).
    """
    gc.collect()
    gc.freeze()


def main(argv: Sequence[str] | None = None) -> int:
    global _exit_registered
    if not _exit_registered:  # once per process, first: however often main runs in it (the tests)
        atexit.register(_collect_once_at_exit)
        _exit_registered = True
    _fix_thread_counts()
    steady_heap()
    lean_imports.install()
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
    # what `train` hands the workers it launches (commands/launch.py)
    args.argv = [str(item) for item in (sys.argv[1:] if argv is None else argv)]
    if args.version:
        from .version import __version__

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
    except BadInput as exc:
        if args.debug:
            raise
        print(f"expresso: error: {redacted(exc)}", file=sys.stderr)
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
