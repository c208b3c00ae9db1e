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
    parser.add_argument(
        "--callbacks",
        action="store_true",
        help="check, build the run as `expresso train` would (nothing trained or written) and print, per event of the "
        "loop, the callbacks it calls in order, instead of the config",
    )
    parser.add_argument(
        "-u",
        "--profile",
        metavar="USER",
        help="also check configs/profiles/USER.yaml against the config's loggers, as `expresso train -u USER` does (implies --check)",
    )
    parser.add_argument(
        "--offline",
        action="store_true",
        help="also check the loggers can run offline, as `expresso train --offline` does (implies --check)",
    )
    return parser


def run(args: argparse.Namespace) -> int:
    from ..config import load_config

    if args.check or args.callbacks or args.profile is not None or args.offline:
        # the torch-side rest of the check too (device, graph wiring); without --check no torch is imported
        from .tracking import checked_config

        config, args.tracking = checked_config(args.config, args.overrides, args.profile, args.offline)
    else:
        config = load_config(args.config, args.overrides)
    if args.callbacks:
        return _print_callbacks(config, args)
    sys.stdout.write(config.to_json() + "\n" if args.json else config.to_yaml())
    return 0


def _print_callbacks(config, args: argparse.Namespace) -> int:
    """The loop this config makes: per event, its callbacks in the order they run (as `expresso train` builds them)."""
    from ..assembly import build_trainer

    trainer = build_trainer(config, None, logger_options=args.tracking.by_index)
    rows = trainer.callbacks.listing("fit")
    width = max(len(event.value) for event, _ in rows)
    print("callbacks per event of fit, in the order they run (train and resume add RecordSummary and Preemption):")
    for event, names in rows:
        print(f"  {event.value:<{width}}  {', '.join(names)}")
    return 0
