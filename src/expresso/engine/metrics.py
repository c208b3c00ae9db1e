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
before any compute or checkpoint); any other metric is updated every batch,
as is one that says ``per_batch = True`` (engine/batch_mean.py: a mean of
per-batch values, whose states are sums but whose batches must stay apart).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import torch
from torch import Tensor

from ..names import PREDICTION_AND_TARGET, TARGET
from . import distributed

BUFFERED_BATCHES = 16


def _concatenable(metric: Any) -> bool:
    """Whether updating on concatenated batches equals updating batch by batch."""
    from torchmetrics.utilities.data import dim_zero_cat, dim_zero_sum

    if getattr(metric, "per_batch", False):
        return False
    reductions = getattr(metric, "_reductions", None)
    return bool(reductions) and all(fn in (dim_zero_sum, dim_zero_cat) for fn in (reductions or {}).values())


def metric_prefix(split: str, pipeline: str, pipelines: int) -> str:
    """Where a pipeline's keys live in a split: ``val``, or ``val/<pipeline>`` when the run has several pipelines."""
    return split if pipelines == 1 else f"{split}/{pipeline}"


def lr_key(optimizer: str, optimizers: int) -> str:
    """Where a schedule records its optimizer's rate: ``lr``, or ``lr/<optimizer>`` when the graph has several optimizers."""
    return "lr" if optimizers == 1 else f"lr/{optimizer}"


def metric_names(prefix: str, loss_terms: Sequence[str], metrics: Iterable[str]) -> set[str]:
    """The keys a ``MetricSet`` reports: the loss, each logged loss term, each metric (a multi-valued one adds ``/<i>``).

    The one definition: the trainer's sets and ``--check`` (assembly/monitored.py) both read it.
    """
    keys = ["loss", *(f"loss/{term}" for term in loss_terms), *metrics]
    return {f"{prefix}/{key}" for key in keys}


class MetricSet:
    """The metrics of one pipeline in one phase; ``inputs`` gives each metric its (prediction, target) tensor names."""

    def __init__(
        self,
        metrics: Mapping[str, Any] | None,
        prefix: str,
        device: torch.device,
        inputs: Mapping[str, Sequence[str]] | None = None,
    ):
        self.prefix, self.device = prefix, device
        self.metrics = {name: metric.to(device) for name, metric in (metrics or {}).items()}
        self.inputs = {name: tuple((inputs or {}).get(name, PREDICTION_AND_TARGET)) for name in self.metrics}
        self.buffered = {name for name, metric in self.metrics.items() if _concatenable(metric)}
        self.reset()

    def reset(self) -> None:
        self.sums: dict[str, Tensor] = {}
        self.samples = 0
        self._pending: dict[tuple, list[tuple[Tensor, Tensor]]] = {}
        for metric in self.metrics.values():
            metric.reset()

    def names(self, loss_terms: Sequence[str] = ()) -> set[str]:
        """Every key ``compute`` can report (scalar metrics), for callbacks that ask whether a key exists at all."""
        return metric_names(self.prefix, loss_terms, self.metrics)

    @torch.no_grad()
    def update(self, tensors: Mapping[str, Any]) -> None:
        target = tensors.get(TARGET)
        size = len(target) if target is not None else len(next(iter(tensors.values())))
        self.samples += size
        for key, value in tensors.items():
            if key == "loss" or key.startswith("loss/"):
                value = value.detach() * size
                self.sums[key] = value if key not in self.sums else self.sums[key] + value
        buffered_pairs = set()
        for name, metric in self.metrics.items():
            pred_key, target_key = self.inputs[name]
            if name not in self.buffered:
                metric.update(tensors[pred_key].detach(), tensors[target_key])
            else:
                buffered_pairs.add((pred_key, target_key))
        for pair in buffered_pairs:
            self._pending.setdefault(pair, []).append((tensors[pair[0]].detach(), tensors[pair[1]]))
        if self._pending and max(len(items) for items in self._pending.values()) >= BUFFERED_BATCHES:
            self._flush()

    @torch.no_grad()
    def _flush(self) -> None:
        pending, self._pending = self._pending, {}
        for pair, items in pending.items():
            preds = torch.cat([p for p, _ in items])
            target = torch.cat([t for _, t in items])
            for name in self.buffered:
                if self.inputs[name] == pair:
                    self.metrics[name].update(preds, target)

    def compute(self) -> dict[str, float]:
        """The epoch's values as floats: the one host sync per epoch."""
        self._flush()
        sums, samples = self._global_sums()
        values: dict[str, Tensor] = {k: s / max(samples, 1) for k, s in sums.items()}
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

    def _global_sums(self) -> tuple[dict[str, Tensor], float]:
        """The loss sums and the sample count over every rank (torchmetrics metrics sync themselves in ``compute``)."""
        if not distributed.active():
            return self.sums, self.samples
        keys = sorted(self.sums)
        local = [self.sums[k].reshape(()).to(torch.float64) for k in keys]
        packed = distributed.all_sum(
            torch.stack([*local, torch.tensor(float(self.samples), dtype=torch.float64, device=self.device)])
        )
        return {k: packed[i].to(self.sums[k].dtype) for i, k in enumerate(keys)}, packed[-1].item()

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
                setattr(
                    metric,
                    attr,
                    value.to(self.device) if isinstance(value, Tensor) else [v.to(self.device) for v in value],
                )
            metric._update_count = saved["updates"]
            metric._computed = None
