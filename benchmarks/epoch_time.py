"""Time per epoch: expresso (built from the example configs, default callbacks on) vs a hand-written loop.

Both do the same work in one process, alternating (hand, expresso, hand, ...)
so machine drift hits both alike: digits, batch 64, AdamW, a training pass and
a validation pass per epoch, one thread. expresso runs with its defaults on:
progress (plain lines, not a TTY here), metrics.csv history, last/best
checkpoints every epoch, the accuracy metric. Targets (issue: engine): within
15% of the hand loop on the MLP, within 5% on the CNN.
"""

from __future__ import annotations

import logging
import statistics
import tempfile
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from expresso import instantiate, load_config
from expresso.assembly import build_trainer

from .expresso_api import wait_for_curves

ROOT = Path(__file__).resolve().parents[1]
EXPERIMENTS = {"MLP": "digits_mlp.yaml", "CNN": "digits_cnn.yaml"}
EPOCHS, ROUNDS = 5, 5


def hand_loop(config) -> float:
    """The plain PyTorch idiom: DataLoader, forward, loss, backward, step; then a validation pass."""
    torch.manual_seed(0)
    model = instantiate(config["model"])
    optimizer = instantiate(config["optimizer"], model.parameters())
    loss_fn = instantiate(config["loss"])
    train = DataLoader(instantiate(config["dataset"], split="train"), batch_size=64, shuffle=True)
    val = DataLoader(instantiate(config["dataset"], split="val"), batch_size=64)
    start = time.perf_counter()
    for _ in range(EPOCHS):
        model.train()
        for x, y in train:
            optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(model(x), y)
            loss.backward()
            optimizer.step()
        model.eval()
        correct = 0
        with torch.inference_mode():
            for x, y in val:
                correct += (model(x).argmax(1) == y).sum()
        float(correct)  # the one sync per epoch a real loop does to report accuracy
    return (time.perf_counter() - start) / EPOCHS


def expresso_loop(config, folder: Path) -> float:
    trainer = build_trainer(config, folder / f"run-{time.monotonic_ns()}")
    start = time.perf_counter()
    trainer.fit()
    seconds = time.perf_counter() - start
    wait_for_curves(trainer)  # outside the clock, before the next fit (and before the run folder is removed)
    return seconds / EPOCHS


def main(rounds: int = ROUNDS) -> dict:
    """Print the table; return {model: {"hand": [s/epoch...], "expresso": [...]}} for the report."""
    torch.set_num_threads(1)
    logging.getLogger("expresso").setLevel(logging.WARNING)  # progress lines would time the terminal
    print(
        f"Time per epoch (train + validation), digits, batch 64, 1 thread; {rounds} alternating rounds of {EPOCHS} epochs"
    )
    print(f"{'model':5} {'hand loop s':>12} {'expresso s':>11} {'ratio':>7}  (median; min-max ratio)")
    found = {}
    with tempfile.TemporaryDirectory() as tmp:
        for label, file in EXPERIMENTS.items():
            overrides = [f"trainer.max_epochs={EPOCHS}", "trainer.batch_size=64"]
            config = load_config(ROOT / "examples/digits/configs/experiments" / file, overrides, check=True)
            hand, ours = [], []
            for _ in range(rounds):
                hand.append(hand_loop(config))
                ours.append(expresso_loop(config, Path(tmp)))
            ratios = [o / h for o, h in zip(ours, hand)]
            print(
                f"{label:5} {statistics.median(hand):12.4f} {statistics.median(ours):11.4f} {statistics.median(ratios):7.3f}"
                f"  ({min(ratios):.3f}-{max(ratios):.3f})"
            )
            found[label] = {"hand": hand, "expresso": ours}
    return found


if __name__ == "__main__":
    main()
