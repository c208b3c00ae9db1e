"""Run the benchmarks in one session: ``python -m benchmarks [--quick] [--cases mlp,cnn,...]`` (or ``make bench``).

Cases, in the order they run (``--cases`` picks some):

- ``imports``: import time of torch, expresso and the peers;
- ``mlp``, ``cnn``: the same training through a hand loop, expresso's CLI and
  Python API, Lightning (defaults, minimal), ignite and Accelerate;
- ``job``: a real job (a small ResNet on synthetic images, about a minute
  per fit), where per-step overhead should vanish: the same frameworks;
- ``data``: a data-bound dataset, hand loop vs expresso's loader defaults;
- ``trackers``: the MLP case with ``loggers: [csv]`` vs ``[csv, tensorboard,
  mlflow]`` (needs those extras), CLI and API;
- ``checkpoint``: writing a ~50M-parameter checkpoint, expresso's writers vs
  ``torch.save``;
- ``compile``: expresso eager vs ``trainer.compile=true``, per epoch;
- ``phases``: cold fits of the MLP and the CNN split into each epoch's
  phases, hand loop vs expresso's API with and without checkpoints
  (benchmarks/phases.py);
- ``cli``, ``epoch``: the earlier start-up and time-per-epoch benchmarks;
- ``attribution``: warm fits of the MLP and the CNN with expresso's defaults
  dropped one at a time, against the hand loop (benchmarks/attribution.py).

Prints each case's table as it finishes, then writes ``results.json`` (every
raw measurement) and ``RESULTS.md`` (the report) into ``--output``
(default: this folder). Every run is a fresh process, so start-up dominates
the time: the full run takes about 30 minutes on 2 busy cores, ``--quick``
(few repeats, for checking the harness, not for numbers) about 12. This process
never imports torch until the ``epoch`` case (``attribution`` also runs here): the measured work runs in
child processes.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import traceback
from pathlib import Path

from . import report
from . import summary as summary_of
from .cases import ALL, CASES
from .training_cases import STANDARD

REPEATS = {  # rounds per case
    "full": {
        "imports": 5,
        "mlp": 7,
        "cnn": 7,
        "job": 3,
        "data": 3,
        "trackers": 7,
        "checkpoint": 5,
        "compile": 2,
        "phases": 7,
        "cli": 10,
        "epoch": 3,
        "attribution": 9,
    },
    "quick": {
        "imports": 2,
        "mlp": 2,
        "cnn": 2,
        "job": 1,
        "data": 1,
        "trackers": 2,
        "checkpoint": 2,
        "compile": 1,
        "phases": 1,
        "cli": 3,
        "epoch": 1,
        "attribution": 1,
    },
}
FRAMEWORKS = tuple(v.framework for v in STANDARD)


def _names(text: str, allowed: tuple[str, ...], flag: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in allowed]
    if unknown or not names:
        raise SystemExit(
            f"python -m benchmarks: error: invalid value for {flag}. Received: {text!r}; expected a comma-separated subset of {','.join(allowed)}"
        )
    return names


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="few repeats: checks the harness, not for numbers to quote"
    )
    parser.add_argument("--cases", default=",".join(ALL), help=f"comma-separated, from {','.join(ALL)} (default: all)")
    parser.add_argument(
        "--frameworks",
        default=",".join(FRAMEWORKS),
        help="training cases: which frameworks (the hand loop and `import torch` always run)",
    )
    parser.add_argument("--repeats", type=int, help="rounds for every case (overrides --quick and the defaults)")
    parser.add_argument(
        "--output",
        default=str(Path(__file__).parent),
        help="folder for results.json and RESULTS.md (default: benchmarks/)",
    )
    args = parser.parse_args(argv)
    args.cases = _names(args.cases, ALL, "--cases")
    args.frameworks = set(_names(args.frameworks, FRAMEWORKS, "--frameworks")) | {"hand", "import-torch"}
    if args.repeats is not None and args.repeats < 1:
        parser.error(f"invalid value for --repeats. Received: {args.repeats}; expected an integer >= 1")
    return args


def show(lines: list[str]) -> None:
    print("\n".join(lines), flush=True)


def run_case(
    name: str, rounds: int, args: argparse.Namespace, scratch: Path, warmed: set[str]
) -> tuple[dict, dict | None]:
    """Measure one case, print its table; returns (raw results, summary)."""
    if name == "imports":
        from . import import_case

        result = import_case.run(rounds, scratch)
        summary = summary_of.summarize_imports(result)
        show(report.imports_section(result, summary))
    elif name in ("mlp", "cnn", "job"):
        from .training_cases import run_case as run_training

        variants = [v for v in STANDARD if v.framework in args.frameworks]
        if name == "job":  # a few MB of checkpoint per 10 s epoch: the row would cost minutes and say nothing
            variants = [v for v in variants if v.framework != "expresso-api-no-checkpoints"]
        result = run_training(CASES[name], variants, rounds, scratch, warmed)
        summary = summary_of.summarize_training(result)
        show(report.training_section(name, result, summary))
    elif name == "data":
        from .data_bound_case import VARIANTS, expresso_defaults
        from .training_cases import run_case as run_training

        result = run_training(CASES[name], VARIANTS, rounds, scratch, warmed)
        result["expresso_defaults"] = expresso_defaults()
        summary = summary_of.summarize_training(result)
        show(report.data_section(result, summary, result["expresso_defaults"]))
    elif name == "trackers":
        from . import tracker_case

        result = tracker_case.run(rounds, scratch, warmed)
        summary = tracker_case.summarize(result)
        show(tracker_case.section(result, summary))
    elif name == "checkpoint":
        from . import checkpoint_case

        result = checkpoint_case.run(rounds, scratch)
        summary = summary_of.summarize_checkpoint(result)
        show(report.checkpoint_section(result, summary))
    elif name == "compile":
        from . import compile_case

        result, summary = compile_case.run(rounds, scratch), None
        if "error" not in result:
            show(compile_case.section(result))
    elif name == "phases":
        from . import phases

        result, summary = phases.run(rounds, scratch), None
        if "error" not in result:
            show(phases.section(result))
    elif name == "cli":
        from . import cli_startup

        result, summary = cli_startup.main(rounds), None
        print()
    elif name == "epoch":  # epoch and attribution run in this process, so they come last
        from . import epoch_time

        result, summary = epoch_time.main(rounds), None
        print()
    else:
        from . import attribution

        result, summary = attribution.run(rounds, scratch), None
        show(attribution.section(result))
    return result, summary


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    args = parse(argv)
    mode = "quick" if args.quick else "full"
    rounds = {case: args.repeats or REPEATS[mode][case] for case in ALL}
    results: dict = {"mode": mode, "argv": argv, "machine": report.machine()}
    summary: dict = {}
    started = time.perf_counter()
    warmed: set[str] = set()  # frameworks whose warm-up ran: once per session
    with tempfile.TemporaryDirectory(prefix="expresso-bench-") as tmp:
        for name in args.cases:
            print(f"== {name} ({rounds[name]} rounds)", file=sys.stderr, flush=True)
            try:
                results[name], found = run_case(name, rounds[name], args, Path(tmp), warmed)
            except Exception:  # one broken case must not cost the others' numbers
                results[name], found = {"error": traceback.format_exc()}, None
                print(f"case {name} failed:\n{results[name]['error']}", file=sys.stderr, flush=True)
            if found is not None:
                summary[name] = found

    results["seconds"] = time.perf_counter() - started
    results["machine"]["load_average_end"] = list(os.getloadavg()) if hasattr(os, "getloadavg") else None
    summary["targets"] = summary_of.targets(results, summary)
    output = Path(args.output)
    output.mkdir(parents=True, exist_ok=True)
    (output / "results.json").write_text(
        json.dumps({"results": results, "summary": summary}, indent=1, default=str) + "\n"
    )
    (output / "RESULTS.md").write_text(report.markdown(results, summary) + "\n")
    if summary["targets"]:
        show(
            ["## Targets (issue: performance)", ""]
            + [
                f"- {t['target']}: {report.number(t['value'])} {t['unit']} (limit {t['limit']}) {'ok' if t['ok'] else 'OVER'}"
                for t in summary["targets"]
            ]
        )
    print(f"\nwrote {output / 'results.json'} and {output / 'RESULTS.md'} ({results['seconds'] / 60:.1f} min)")


if __name__ == "__main__":
    main()
