"""MetricSet: epoch values equal sklearn's, with buffered updates and across a mid-epoch checkpoint."""

from __future__ import annotations

import torch
from sklearn.metrics import accuracy_score
from torchmetrics import Metric
from torchmetrics.classification import MulticlassAccuracy

from expresso.engine.metrics import BUFFERED_BATCHES, MetricSet


class MeanOfBatchMeans(Metric):
    """A metric whose state is averaged across processes: not safe to update on concatenated batches."""

    def __init__(self):
        super().__init__()
        self.add_state("value", default=torch.tensor(0.0), dist_reduce_fx="mean")
        self.add_state("count", default=torch.tensor(0), dist_reduce_fx="sum")
        self.calls = 0

    def update(self, preds, target):
        self.calls += 1
        self.value += (preds.argmax(1) == target).float().mean()
        self.count += 1

    def compute(self):
        return self.value / self.count


def batches(n: int, seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    return [(torch.randn(8, 4, generator=generator), torch.randint(0, 4, (8,), generator=generator)) for _ in range(n)]


def metric_set() -> MetricSet:
    return MetricSet(
        {"acc": MulticlassAccuracy(num_classes=4, average="micro"), "mbm": MeanOfBatchMeans()},
        "val",
        torch.device("cpu"),
    )


def test_buffered_accuracy_equals_sklearn_and_the_other_metric_updates_every_batch():
    data = batches(2 * BUFFERED_BATCHES + 3)
    metrics = metric_set()
    assert metrics.buffered == {"acc"}
    for preds, target in data:
        metrics.update({"y_hat": preds, "y": target, "loss": torch.tensor(1.0)})
    values = metrics.compute()
    preds = torch.cat([p for p, _ in data]).argmax(1)
    target = torch.cat([t for _, t in data])
    assert values["val/acc"] == torch.tensor(accuracy_score(target, preds), dtype=torch.float32).item()
    assert metrics.metrics["mbm"].calls == len(data)


def test_a_mid_epoch_state_holds_the_pending_batches():
    data = batches(BUFFERED_BATCHES + 5)
    whole, first, resumed = metric_set(), metric_set(), metric_set()
    for i, (preds, target) in enumerate(data):
        whole.update({"y_hat": preds, "y": target})
        if i < 7:
            first.update({"y_hat": preds, "y": target})
    resumed.load_state_dict(first.state_dict())  # 7 batches pending in the buffer are in the state
    for preds, target in data[7:]:
        resumed.update({"y_hat": preds, "y": target})
    assert resumed.compute() == whole.compute()
