"""``trainer.compile``: expresso's opt-in ``torch.compile``, eager against compiled, per epoch.

The MLP and CNN cases run through the Python API with every default on,
once eager and once with ``trainer.compile=true``, alternating, in one child
process (``python -m benchmarks.compile_case``). A fit's first epoch pays for
compiling, so the report shows it apart from the steady epochs (the median of
epochs 2 to 10). Each round builds new models, so each compiled fit compiles
afresh. No target: the issue asks for compile as an opt-in and its gain shown.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

from . import launch
from .cases import CASES, ROOT

MODES = ("eager", "compile")
MODELS = ("mlp", "cnn")


def run(rounds: int, scratch: Path) -> dict:
    """Parent side: one child process does every round."""
    folder = scratch / "compile"
    folder.mkdir(parents=True, exist_ok=True)
    out = folder / "result.json"
    done = launch.run(
        launch.python(
            "-m", "benchmarks.compile_case", "--rounds", str(rounds), "--folder", str(folder), "--out", str(out)
        ),
        folder / "output.log",
    )
    if done.returncode != 0:
        return {"error": f"exit status {done.returncode}:\n{done.tail()}"}
    return json.loads(out.read_text())


def section(result: dict) -> list[str]:
    """The report's Markdown for this case."""
    lines = [
        "## torch.compile, opt-in (`compile`)",
        "",
        f"`trainer.compile=true` against eager, expresso API with its defaults, {result['rounds']} alternating rounds in one process, 1 thread. "
        "First epoch: includes compiling. Steady epoch: median of epochs 2-10. Ratio: compiled / eager steady epoch.",
        "",
        "| case | mode | first epoch s | steady epoch ms | ratio | val acc |",
        "|---|---|---|---|---|---|",
    ]
    for model in MODELS:
        eager = statistics.median(r["steady_s"] for r in result["runs"][model]["eager"])
        for mode in MODES:
            runs = result["runs"][model][mode]
            steady = statistics.median(r["steady_s"] for r in runs)
            first = statistics.median(r["first_s"] for r in runs)
            accuracy = runs[-1]["val_acc"]
            lines.append(
                f"| {model} | {mode} | {first:.2f} | {steady * 1e3:.1f} | {steady / eager:.2f}x | {accuracy:.4f} |"
            )
    return lines + [""]


def _fit(model: str, mode: str, folder: Path) -> dict:
    from expresso import Callback, load_config
    from expresso.assembly import build_trainer

    class EpochTimes(Callback):
        def __init__(self) -> None:
            self.times: list[float] = []

        def on_epoch_start(self, state) -> None:
            self.started = time.perf_counter()

        def on_epoch_end(self, state) -> None:
            self.times.append(time.perf_counter() - self.started)

    overrides = ["trainer.compile=true"] if mode == "compile" else []
    config = load_config(ROOT / CASES[model].config, overrides, check=True)
    timer = EpochTimes()
    trainer = build_trainer(config, folder / f"run-{time.monotonic_ns()}", extra_callbacks=(timer,))
    metrics = trainer.fit()
    return {
        "first_s": timer.times[0],
        "steady_s": statistics.median(timer.times[1:]),
        "val_acc": metrics.get("val/acc"),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.compile_case", description="child side of the compile case"
    )
    parser.add_argument("--rounds", type=int, required=True)
    parser.add_argument("--folder", required=True)
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)

    import logging

    import torch

    torch.set_num_threads(1)
    logging.getLogger("torch").setLevel(logging.ERROR)
    runs: dict = {model: {mode: [] for mode in MODES} for model in MODELS}
    for index in range(args.rounds):
        for model in MODELS:
            for mode in MODES:
                runs[model][mode].append(_fit(model, mode, Path(args.folder)))
                print(f"  .. compile: round {index + 1}/{args.rounds} {model} {mode}", file=sys.stderr, flush=True)
    Path(args.out).write_text(json.dumps({"rounds": args.rounds, "runs": runs}))


if __name__ == "__main__":
    main()
