"""The baseline: the training loop a person writes by hand with plain PyTorch.

DataLoader, forward, loss, backward, step; then a validation pass computing
accuracy, every epoch. No logging, no checkpoints, no train metrics: every
ratio in the report is "what the framework costs on top of this". The
accuracy is summed on the tensor side and read once per epoch, as a careful
hand loop does. The clock covers the epochs only (model, optimizer and
loaders are built before it starts), like ``Trainer.fit()`` for expresso.

With ``final_evaluation`` (a case of one fit per process, whose whole process
is compared with ``expresso train``'s) the script also does what
``expresso train`` does after its fit: it keeps the weights of the best
validation epoch (in memory: a hand script writes no checkpoint) and
evaluates them on the validation and test splits, after the clock.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable

import torch
from torch import nn

from . import workload
from .cases import Case


def train(
    case: Case,
    num_workers: int = 0,
    epochs: int | None = None,
    final_evaluation: bool = False,
    mark: Callable[[str], None] = lambda phase: None,
) -> dict:
    """One fit; ``mark(phase)`` is called where probe.EpochPhases marks expresso's (benchmarks/phases.py)."""
    model = workload.build_model(case)
    optimizer = torch.optim.Adam(model.parameters(), lr=case.lr)
    loss_fn = nn.CrossEntropyLoss()
    train_loader, val_loader, order = workload.loaders(case, num_workers)
    first_step_at, steps, accuracy = None, 0, float("nan")
    best, best_weights = -1.0, None

    start = time.perf_counter()
    mark("fit_start")
    for epoch in range(epochs or case.epochs):
        mark("epoch_start")
        order.set_epoch(epoch)
        model.train()
        for x, y in train_loader:
            optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(model(x), y)
            loss.backward()
            optimizer.step()
            steps += 1
            if first_step_at is None:
                first_step_at = time.time()
        mark("val_start")
        accuracy = _accuracy(model, val_loader)
        mark("val_end")
        if final_evaluation and accuracy > best:
            best, best_weights = accuracy, copy.deepcopy(model.state_dict())
    seconds = time.perf_counter() - start
    mark("fit_end")
    extra = {}
    if final_evaluation and best_weights is not None:
        model.load_state_dict(best_weights)
        test_loader = torch.utils.data.DataLoader(
            workload.datasets(case, ("test",))[0], batch_size=case.batch_size, num_workers=num_workers
        )
        extra = {"best_val_acc": _accuracy(model, val_loader), "test_acc": _accuracy(model, test_loader)}
    return workload.fit_result(seconds, first_step_at, accuracy, steps, **extra)


def _accuracy(model: nn.Module, loader) -> float:
    """The accuracy over a loader, summed on the tensor side and read once."""
    model.eval()
    correct, seen = 0, 0
    with torch.inference_mode():
        for x, y in loader:
            correct += (model(x).argmax(1) == y).sum()
            seen += len(y)
    return float(correct) / seen
