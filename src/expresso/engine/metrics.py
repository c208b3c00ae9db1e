"""Epoch metrics accumulated on the device: no host sync until the epoch ends.

Each phase owns a ``MetricSet``: the sample-weighted mean of every loss
tensor (``loss`` and, with several terms, ``loss/<term>``) plus any
torchmetrics metrics, updated with the step's ``y_hat`` and ``y``. Values
reach the host once, in ``compute()``. ``state_dict`` carries the running
sums, so a run resumed mid-epoch reports the same epoch values.
"""

from __future__ import annotations

from typing import Any, Mapping

import torch
from torch import Tensor


class MetricSet:
    def __init__(self, metrics: Mapping[str, Any] | None, prefix: str, device: torch.device, inputs=("y_hat", "y")):
        self.prefix, self.inputs, self.device = prefix, inputs, device
        self.metrics = {name: metric.to(device) for name, metric in (metrics or {}).items()}
        self.reset()

    def reset(self) -> None:
        self.sums: dict[str, Tensor] = {}
        self.samples = 0
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
            for metric in self.metrics.values():
                metric.update(preds, target)

    def compute(self) -> dict[str, float]:
        """The epoch's values as floats: the one host sync per epoch."""
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
