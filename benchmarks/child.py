"""One benchmark run in a fresh process: ``python -m benchmarks.child FRAMEWORK CASE --out FILE``.

Why a process per run: peak memory (read by the parent from the child's
rusage) belongs to one framework only, no run inherits another's imports,
caches or allocator state, and the first fit is cold, as for a user who
runs ``expresso train``. The child runs ``--fits`` fits in a row (the first
cold, the next warm) and writes their results as JSON to ``--out``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from .cases import CASES

FRAMEWORKS = (
    "hand",
    "expresso-api",
    "expresso-api-no-checkpoints",
    "lightning-defaults",
    "lightning-minimal",
    "ignite",
    "accelerate",
)


def fit(
    framework: str, case, workdir: Path, workers: int | None, epochs: int | None, config_overrides: list[str]
) -> dict:
    if framework == "hand":
        from . import hand_loop

        # One fit per process: the whole process is compared with `expresso train`'s, so it evaluates as that does.
        return hand_loop.train(case, num_workers=workers or 0, epochs=epochs, final_evaluation=case.fits == 1)
    if framework in ("expresso-api", "expresso-api-no-checkpoints"):
        from . import expresso_api

        return expresso_api.train(
            case,
            workdir,
            num_workers=workers,
            epochs=epochs,
            extra=config_overrides,
            without=("Checkpoint",) if framework == "expresso-api-no-checkpoints" else (),
        )
    if config_overrides:
        raise ValueError(
            f"Invalid --override for {framework}. Received: {config_overrides}; expected none (expresso only)"
        )
    from . import peers

    if framework.startswith("lightning-"):
        return peers.lightning(case, workdir, minimal=framework == "lightning-minimal", epochs=epochs)
    if framework == "ignite":
        return peers.ignite(case, workdir, epochs=epochs)
    if framework == "accelerate":
        return peers.accelerate(case, workdir, epochs=epochs)
    raise ValueError(f"Invalid framework. Received: {framework!r}; expected one of {FRAMEWORKS}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.child", description=__doc__.splitlines()[0])
    parser.add_argument("framework", choices=FRAMEWORKS)
    parser.add_argument("case", choices=sorted(CASES))
    parser.add_argument("--out", required=True, help="JSON file for the results")
    parser.add_argument("--workdir", required=True, help="scratch folder (run folders, logs)")
    parser.add_argument("--fits", type=int, help="fits in this process (default: the case's)")
    parser.add_argument("--workers", type=int, help="DataLoader num_workers (default: the framework's)")
    parser.add_argument("--epochs", type=int, help="epochs (default: the case's; the warm-up uses 1)")
    parser.add_argument(
        "--override", action="append", default=[], help="expresso-api only: a config override (repeatable)"
    )
    args = parser.parse_args(argv)

    import torch

    torch.set_num_threads(1)
    case = CASES[args.case]
    results = []
    for index in range(args.fits or case.fits):
        workdir = Path(args.workdir) / f"fit-{index}"
        workdir.mkdir(parents=True, exist_ok=True)
        results.append(fit(args.framework, case, workdir, args.workers, args.epochs, args.override))
    Path(args.out).write_text(json.dumps({"framework": args.framework, "case": args.case, "fits": results}))


if __name__ == "__main__":
    main()
