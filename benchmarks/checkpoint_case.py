"""Checkpoint writing: expresso's atomic writer on a ~50M-parameter model against a bare ``torch.save``.

Variants, alternating in each round, each writing the same state dict
(~200 MB of float32, under ``models`` as in the trainer's payload) to a
fresh file:

- ``torch.save``: the bare call, no fsync (the baseline the issue names);
- ``torch.save + fsync``: what durability alone costs, for scale;
- ``save_atomic``: expresso's writer (temporary file, fsync, rename, folder
  fsync), on the calling thread;
- ``writer thread``: what ``Trainer.save_checkpoint`` does at an epoch's end:
  the state copied (``detached``) and ``save_atomic`` handed to the
  checkpoint writer thread. "Training blocked" is the time until the
  training thread may go on (the copy); "seconds" until the file is written.

Every file is read back (``torch.load(weights_only=True)``) and compared
with the model outside the clock: a fast write that is wrong counts as a
failure. ``os.sync()`` between writes keeps one variant's dirty pages from
slowing the next. Target (issue: performance): expresso's writer at most
1.3x ``torch.save``.

The work runs in a child process (``python -m benchmarks.checkpoint_case``)
so the parent never imports torch and the peak RSS is this case's alone.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from . import launch

VARIANTS = ("torch.save", "torch.save + fsync", "save_atomic", "writer thread")
TARGET = 1.3
WIDTH, LAYERS = 2048, 12  # 12 x Linear(2048, 2048): 50.3M parameters


def run(rounds: int, scratch: Path) -> dict:
    """Parent side: one child process does every round."""
    folder = scratch / "checkpoint"
    folder.mkdir(parents=True, exist_ok=True)
    out = folder / "result.json"
    done = launch.run(
        launch.python(
            "-m", "benchmarks.checkpoint_case", "--rounds", str(rounds), "--folder", str(folder), "--out", str(out)
        ),
        folder / "output.log",
    )
    if done.returncode != 0:
        return {"error": f"exit status {done.returncode}:\n{done.tail()}", "rounds": rounds}
    result = json.loads(out.read_text())
    result["peak_rss_mb"] = done.peak_rss_mb
    return result


def _write(variant: str, payload: dict, path: Path) -> dict:
    import torch

    from expresso.engine.checkpoints.io import save_atomic
    from expresso.engine.checkpoints.writer import Writes, detached

    start = time.perf_counter()
    blocked = None
    if variant == "torch.save":
        torch.save(payload, path)
    elif variant == "torch.save + fsync":
        with open(path, "wb") as handle:
            torch.save(payload, handle)
            handle.flush()
            os.fsync(handle.fileno())
    elif variant == "save_atomic":
        save_atomic(payload, path)
    else:
        writes, copied = Writes(), detached(payload)
        writes.submit(lambda: save_atomic(copied, path))
        blocked = time.perf_counter() - start
        writes.wait()
    return {"seconds": time.perf_counter() - start, "blocked_s": blocked}


def _verified(path: Path, model) -> bool:
    import torch

    loaded = torch.load(path, map_location="cpu", weights_only=True)["models"]["model"]
    return all(torch.equal(loaded[name], value) for name, value in model.state_dict().items())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.checkpoint_case", description="child side of the checkpoint case"
    )
    parser.add_argument("--rounds", type=int, required=True)
    parser.add_argument("--folder", required=True)
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)

    import torch
    from torch import nn

    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = nn.Sequential(*[nn.Linear(WIDTH, WIDTH) for _ in range(LAYERS)])
    payload = {"models": {"model": model.state_dict()}}  # shaped like Trainer.save_checkpoint's payload
    parameters = sum(p.numel() for p in model.parameters())
    folder = Path(args.folder)
    runs: dict[str, list[dict]] = {v: [] for v in VARIANTS}
    size = None
    for index in range(-1, args.rounds):  # round -1 warms up every path and is dropped
        for variant in VARIANTS:
            path = folder / f"{variant.replace(' ', '_').replace('+', 'and')}.ckpt"
            os.sync()
            try:
                measured = _write(variant, payload, path)
                measured["verified"] = _verified(path, model)
                size = path.stat().st_size
            except Exception as exc:  # the other variants still run
                measured = {"seconds": None, "error": f"{type(exc).__name__}: {exc}"}
            path.unlink(missing_ok=True)
            if index >= 0:
                runs[variant].append(measured)
        if index >= 0:
            print(f"  .. checkpoint: round {index + 1}/{args.rounds}", file=sys.stderr, flush=True)
    Path(args.out).write_text(
        json.dumps(
            {
                "rounds": args.rounds,
                "parameters": parameters,
                "file_mb": (size or 0) / 2**20,
                "variants": list(VARIANTS),
                "runs": runs,
                "target": TARGET,
            }
        )
    )


if __name__ == "__main__":
    main()
