"""Epoch metrics accumulated on the device: no host sync until the epoch ends.

Each phase owns a ``MetricSet``: the sample-weighted mean of every loss
tensor (``loss`` and, with several terms, ``loss/<term>``) plus any
torchmetrics metrics, updated with the step's ``y_hat`` and ``y``. Values
reach the host once, in ``compute()``. ``state_dict`` carries the running
sums, so a run resumed mid-epoch reports the same epoch values.

A torchmetrics ``update`` costs a fraction of a millisecond of Python, a real
share of a small model's step. A metric whose every state is reduced by sum
or concatenation gives the same result updated once on several batches
concatenated, so those are updated every ``BUFFERED_BATCHES`` batches (and
before any compute or checkpoint); any other metric is updated every batch.
"""

from __future__ import annotations

from typing import Any, Mapping

import torch
from torch import Tensor

BUFFERED_BATCHES = 16


def _concatenable(metric: Any) -> bool:
    """Whether updating on concatenated batches equals updating batch by batch."""
    from torchmetrics.utilities.data import dim_zero_cat, dim_zero_sum

    reductions = getattr(metric, "_reductions", None)
    return bool(reductions) and all(fn in (dim_zero_sum, dim_zero_cat) for fn in reductions.values())


class MetricSet:
    def __init__(self, metrics: Mapping[str, Any] | None, prefix: str, device: torch.device, inputs=("y_hat", "y")):
        self.prefix, self.inputs, self.device = prefix, inputs, device
        self.metrics = {name: metric.to(device) for name, metric in (metrics or {}).items()}
        self.buffered = {name for name, metric in self.metrics.items() if _concatenable(metric)}
        self.reset()

    def reset(self) -> None:
        self.sums: dict[str, Tensor] = {}
        self.samples = 0
        self._pending: list[tuple[Tensor, Tensor]] = []
        for metric in self.metrics.values():
            metric.reset()

    @torch.no_grad()
    def update(self, tensors: Mapping[str, Any]) -> None:
        target = tensors.get(self.inputs[1])
        size = len(target) if target is not None else len(next(iter(tensors.values())))
        self.samples += size
        for key, value in tensors.items():
            if key == "loss" or key.startswith("loss/"):
                value = value.detach() * size
                self.sums[key] = value if key not in self.sums else self.sums[key] + value
        if self.metrics:
            preds = tensors[self.inputs[0]].detach()
            for name, metric in self.metrics.items():
                if name not in self.buffered:
                    metric.update(preds, target)
            if self.buffered:
                self._pending.append((preds, target))
                if len(self._pending) >= BUFFERED_BATCHES:
                    self._flush()

    @torch.no_grad()
    def _flush(self) -> None:
        if not self._pending:
            return
        preds = torch.cat([p for p, _ in self._pending])
        target = torch.cat([t for _, t in self._pending])
        self._pending = []
        for name in self.buffered:
            self.metrics[name].update(preds, target)

    def compute(self) -> dict[str, float]:
        """The epoch's values as floats: the one host sync per epoch."""
        self._flush()
        values: dict[str, Tensor] = {k: s / max(self.samples, 1) for k, s in self.sums.items()}
        for name, metric in self.metrics.items():
            if metric._update_count:
                values[name] = metric.compute()
        out: dict[str, float] = {}
        for key, value in values.items():
            value = value.detach().float().cpu()
            if value.numel() == 1:
                out[f"{self.prefix}/{key}"] = value.item()
            else:
                out.update({f"{self.prefix}/{key}/{i}": v for i, v in enumerate(value.flatten().tolist())})
        return out

    def state_dict(self) -> dict[str, Any]:
        self._flush()  # the saved states hold every batch seen so far
        return {
            "sums": dict(self.sums),
            "samples": self.samples,
            "metrics": {
                name: {"state": dict(m.metric_state), "updates": m._update_count} for name, m in self.metrics.items()
            },
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.sums = {k: v.to(self.device) for k, v in state["sums"].items()}
        self.samples = state["samples"]
        for name, saved in state["metrics"].items():
            metric = self.metrics[name]
            for attr, value in saved["state"].items():
                setattr(metric, attr, value.to(self.device) if isinstance(value, Tensor) else [v.to(self.device) for v in value])
            metric._update_count = saved["updates"]
            metric._computed = None
