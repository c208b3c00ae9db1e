"""``expresso config CONFIG [KEY=VALUE ...]``: print the resolved config; ``--check`` also checks its classes.

Without ``--check`` nothing but the config layer loads (no torch), so this
answers as fast as Python starts.
"""

from __future__ import annotations

import argparse
import sys


def add_parser(subparsers: argparse._SubParsersAction, common: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "config",
        parents=[common],
        help="print the resolved config (validate only)",
        description=(
            "Print the fully resolved config: file references, extends, overrides and interpolations applied. "
            "The printed YAML, saved and loaded again, resolves to itself (JSON writes integer keys as strings)."
        ),
    )
    parser.add_argument("config", metavar="CONFIG", help="a .yaml, .yml, .json or .py config file")
    parser.add_argument(
        "overrides", nargs="*", metavar="KEY=VALUE", help="overrides: key.sub=value, +new.key=value, ~key"
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of YAML (integer keys become strings)")
    parser.add_argument(
        "--check",
        action="store_true",
        help="also import every class and check its arguments (what `expresso train` checks first); shows injected task values",
    )
    return parser


def run(args: argparse.Namespace) -> int:
    from ..config import load_config

    config = load_config(args.config, args.overrides, check=args.check)
    if args.check:  # the torch-side rest of the check (device, graph wiring); without --check no torch is imported
        from ..assembly import check

        config = check(config)
    sys.stdout.write(config.to_json() + "\n" if args.json else config.to_yaml())
    return 0
