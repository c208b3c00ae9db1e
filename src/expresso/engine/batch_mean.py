"""A metric written as a plain callable, reported as its batch-size-weighted mean over the epoch.

PyTorch Template users write metrics as ``def accuracy(output, target)``
returning a number, or as an ``nn.Module`` whose ``forward(prediction,
target)`` does the same. ``BatchMean`` calls one on every batch and reports
the mean of its values weighted by each batch's size: for a per-sample
average such as accuracy that is the value over the whole epoch.

It is a torchmetrics ``Metric`` (a sum and a count, both summed across
processes), so resetting, moving to a device, checkpointing a half-done
epoch and distributed sync work as for any other metric. MetricSet must
update it batch by batch, never on concatenated batches (``per_batch``): a
function of the concatenation is not the mean of the per-batch values.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor
from torchmetrics import Metric


class BatchMean(Metric):
    """``fn(prediction, target)`` on each batch, reported as the mean over the samples seen; ``name`` is what errors call it."""

    per_batch = True  # engine/metrics.py: never updated on concatenated batches
    full_state_update = False
    total: Tensor
    count: Tensor

    def __init__(self, fn: Callable[[Any, Any], Any], name: str) -> None:
        super().__init__()
        self.fn, self.name = fn, name  # an nn.Module fn becomes a submodule: it moves to the metric's device
        self.add_state("total", default=torch.tensor(0.0), dist_reduce_fx="sum")
        self.add_state("count", default=torch.tensor(0.0), dist_reduce_fx="sum")

    def update(self, prediction: Any, target: Any) -> None:
        value = self.fn(prediction, target)
        if isinstance(value, Tensor):
            if value.numel() != 1:
                raise ValueError(
                    f"{self.name} returned a tensor of shape {tuple(value.shape)}; expected one number per batch "
                    "(a scalar tensor or a float), which is averaged over the epoch"
                )
            value = value.detach().reshape(()).to(self.total.dtype)
        elif not isinstance(value, numbers.Real):
            raise ValueError(
                f"{self.name} returned {type(value).__name__} {value!r}; expected one number per batch (a scalar tensor or a float)"
            )
        size = _batch_size(target, prediction)
        self.total += value * size
        self.count += size

    def compute(self) -> Tensor:
        return self.total / self.count


def _batch_size(*tensors: Any) -> int:
    """The batch's size: the first dimension of the target, else of the prediction, else 1."""
    for tensor in tensors:
        shape = getattr(tensor, "shape", None)
        if shape is not None and len(shape) > 0:
            return int(shape[0])
    return 1
