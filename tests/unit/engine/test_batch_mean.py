"""BatchMean: a metric written as a plain callable, reported as the batch-size-weighted mean of its per-batch values."""

from __future__ import annotations

import copy

import pytest
import torch
from sklearn.metrics import accuracy_score

from expresso.engine.batch_mean import BatchMean
from expresso.engine.metrics import BUFFERED_BATCHES, MetricSet

SIZES = [8] * (BUFFERED_BATCHES + 2) + [3]  # a small last batch, as a split's last batch is


def batches(seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    return [(torch.randn(n, 4, generator=generator), torch.randint(0, 4, (n,), generator=generator)) for n in SIZES]


class Counted:
    """Accuracy as PyTorch Template writes it (a Python float), counting its calls."""

    def __init__(self):
        self.calls = 0

    def __call__(self, output, target):
        self.calls += 1
        return torch.sum(output.argmax(dim=1) == target).item() / len(target)


def test_the_epoch_value_is_the_accuracy_over_all_samples_not_the_mean_of_batch_accuracies():
    data = batches()
    fn = Counted()
    metrics = MetricSet({"acc": BatchMean(fn, "metric 'acc'")}, "val", torch.device("cpu"))
    for preds, target in data:
        metrics.update({"y_hat": preds, "y": target})
    value = metrics.compute()["val/acc"]
    preds, target = torch.cat([p for p, _ in data]).argmax(1), torch.cat([t for _, t in data])
    batch_means = [(p.argmax(1) == t).float().mean().item() for p, t in data]
    assert value == pytest.approx(accuracy_score(target, preds), abs=1e-6)
    assert abs(sum(batch_means) / len(batch_means) - accuracy_score(target, preds)) > 1e-3  # the weighting matters here
    assert metrics.buffered == set() and fn.calls == len(data)  # called on every batch, never on concatenated ones


def test_a_module_metric_returning_a_tensor_and_a_float_metric_agree():
    class Accuracy(torch.nn.Module):
        def forward(self, prediction, target):
            return (prediction.argmax(dim=1) == target).float().mean()

    metrics = MetricSet({"a": BatchMean(Accuracy(), "a"), "b": BatchMean(Counted(), "b")}, "train", torch.device("cpu"))
    for preds, target in batches():
        metrics.update({"y_hat": preds, "y": target})
    values = metrics.compute()
    assert values["train/a"] == pytest.approx(values["train/b"], abs=1e-6)


def test_a_mid_epoch_state_resumes_to_the_same_value_and_reset_starts_over():
    data = batches(1)
    whole, first, resumed = (
        MetricSet({"acc": BatchMean(Counted(), "acc")}, "val", torch.device("cpu")) for _ in range(3)
    )
    for i, (preds, target) in enumerate(data):
        whole.update({"y_hat": preds, "y": target})
        if i < 7:
            first.update({"y_hat": preds, "y": target})
    resumed.load_state_dict(copy.deepcopy(first.state_dict()))
    for preds, target in data[7:]:
        resumed.update({"y_hat": preds, "y": target})
    assert resumed.compute() == whole.compute()
    whole.reset()
    preds, target = data[0]
    whole.update({"y_hat": preds, "y": target})
    assert whole.compute()["val/acc"] == pytest.approx(accuracy_score(target, preds.argmax(1)), abs=1e-6)


def test_a_copy_measures_on_its_own():
    metric = BatchMean(Counted(), "acc")
    other = copy.deepcopy(metric)
    preds, target = batches()[0]
    metric.update(preds, target)
    assert (metric.count.item(), other.count.item()) == (8.0, 0.0)


@pytest.mark.parametrize(
    "returned, message",
    [
        (
            torch.ones(8),
            "metric 'acc' (my.per_sample) returned a tensor of shape (8,); expected one number per batch (a scalar tensor or a float), which is averaged over the epoch",
        ),
        (
            "0.5",
            "metric 'acc' (my.per_sample) returned str '0.5'; expected one number per batch (a scalar tensor or a float)",
        ),
    ],
)
def test_a_value_that_is_not_one_number_is_an_error_naming_the_metric(returned, message):
    metric = BatchMean(lambda prediction, target: returned, "metric 'acc' (my.per_sample)")
    with pytest.raises(ValueError) as info:
        metric.update(torch.zeros(8, 4), torch.zeros(8))
    assert str(info.value) == message
