"""The ``expresso`` command.

Start-up is kept cheap: this module imports only argparse, and each command
imports what it needs when it runs, so ``expresso --help`` and
``expresso config`` never import torch.

Bad input (a config problem, a bad argument) prints one clear message and
exits with status 2; ``--debug`` shows the full traceback instead.
"""

from __future__ import annotations

import argparse
import sys
from typing import Sequence

EXIT_BAD_INPUT = 2


def _build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true", help="show full tracebacks")

    parser = argparse.ArgumentParser(
        prog="expresso",
        description="Configurable experiments for PyTorch: one config, one command, a recorded run.",
        parents=[common],
    )
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    config = commands.add_parser(
        "config",
        parents=[common],
        help="print the resolved config (validate only)",
        description=(
            "Print the fully resolved config: file references, extends, overrides and interpolations applied. "
            "The printed tree, saved and loaded again, resolves to itself."
        ),
    )
    config.add_argument("config", metavar="CONFIG", help="a .yaml, .yml, .json or .py config file")
    config.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="overrides: key.sub=value, +new.key=value, ~key")
    config.add_argument("--json", action="store_true", help="print JSON instead of YAML")
    config.add_argument(
        "--check",
        action="store_true",
        help="also import every class and check its arguments (what `expresso train` checks first); shows injected task values",
    )
    config.set_defaults(handler=_config_command)
    return parser


def _config_command(args: argparse.Namespace) -> int:
    from .config import load_config

    config = load_config(args.config, args.overrides, check=args.check)
    sys.stdout.write(config.to_json() + "\n" if args.json else config.to_yaml())
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = _build_parser()
    args = parser.parse_args(argv)
    if args.version:
        from . import __version__

        print(f"expresso {__version__}")
        return 0
    if args.command is None:
        parser.print_help()
        return EXIT_BAD_INPUT
    try:
        return args.handler(args)
    except Exception as exc:
        from .config import ConfigError

        if args.debug or not isinstance(exc, ConfigError):
            raise
        print(f"expresso: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
