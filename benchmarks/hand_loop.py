"""The baseline: the training loop a person writes by hand with plain PyTorch.

DataLoader, forward, loss, backward, step; then a validation pass computing
accuracy, every epoch. No logging, no checkpoints, no train metrics: every
ratio in the report is "what the framework costs on top of this". The
accuracy is summed on the tensor side and read once per epoch, as a careful
hand loop does. The clock covers the epochs only (model, optimizer and
loaders are built before it starts), like ``Trainer.fit()`` for expresso.
"""

from __future__ import annotations

import time

import torch
from torch import nn

from . import workload
from .cases import Case


def train(case: Case, num_workers: int = 0, epochs: int | None = None) -> dict:
    model = workload.build_model(case)
    optimizer = torch.optim.Adam(model.parameters(), lr=case.lr)
    loss_fn = nn.CrossEntropyLoss()
    train_loader, val_loader, order = workload.loaders(case, num_workers)
    first_step_at, steps, accuracy = None, 0, float("nan")

    start = time.perf_counter()
    for epoch in range(epochs or case.epochs):
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
        model.eval()
        correct, seen = 0, 0
        with torch.inference_mode():
            for x, y in val_loader:
                correct += (model(x).argmax(1) == y).sum()
                seen += len(y)
        accuracy = float(correct) / seen
    seconds = time.perf_counter() - start
    return workload.fit_result(seconds, first_step_at, accuracy, steps)
