"""Callables written as other frameworks' users write them, through ``expresso train``.

- a metric that is a plain function (PyTorch Template's ``accuracy(output,
  target)``, with the digits task's ``target: digit`` beside it) and one that
  is an ``nn.Module``: each reported as its batch-size-weighted mean, which
  for accuracy is the accuracy over the whole split;
- a stage's ``until`` that is a class with ``__call__(self, state)``, built
  from its config keys (``threshold``) and then called after every epoch;
- a model returning a one-element list (TorchAssistant's ``return [x]``; the
  same run), and one returning a pair for a node that declares one output.

The two trainings start together (~3 s of imports each).
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import torch
from cli_runs import load, only_run_dir, read_config, read_history, together
from sklearn.metrics import accuracy_score

from expresso.data import Digits

THRESHOLD = 0.87  # val/acc of the 3 epochs: 0.744, 0.848, 0.896
USER_CODE = {
    "my/__init__.py": "",
    "my/metrics.py": """\
        import torch


        def accuracy(output, target):
            with torch.no_grad():
                pred = torch.argmax(output, dim=1)
                assert pred.shape[0] == len(target)
                correct = 0
                correct += torch.sum(pred == target).item()
            return correct / len(target)


        class Accuracy(torch.nn.Module):
            def forward(self, prediction, target):
                return (prediction.argmax(dim=1) == target).float().mean()


        class AccuracyReached:
            def __init__(self, threshold, monitor="val/acc"):
                self.threshold, self.monitor = threshold, monitor

            def __call__(self, state):
                return state.metrics[self.monitor] >= self.threshold
        """,
    "my/models.py": """\
        import torch


        class Listed(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 10))

            def forward(self, x):
                return [self.net(x)]


        class Pair(Listed):
            def forward(self, x):
                out = self.net(x)
                return out, out
        """,
    "configs/base.yaml": """\
        dataset: {class: expresso.data.Digits}
        task: {num_classes: 10, target: digit}
        loss: {class: torch.nn.CrossEntropyLoss}
        optimizer: {class: torch.optim.AdamW, lr: 1.0e-2}
        trainer: {max_epochs: 1, batch_size: 128, monitor: val/loss, mode: min}
        """,
    "configs/callables.yaml": f"""\
        extends: base.yaml
        name: callables
        model: {{class: my.models.Listed}}
        metrics:
          acc: {{class: my.metrics.accuracy}}
          acc_module: {{class: my.metrics.Accuracy}}
        stages:
          - {{epochs: 5, until: {{class: my.metrics.AccuracyReached, threshold: {THRESHOLD}}}}}
        """,
    "configs/pair.yaml": "extends: base.yaml\nname: pair\nmodel: {class: my.models.Pair}\n",
}


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict:
    project = tmp_path_factory.mktemp("callables")
    for relative, text in USER_CODE.items():
        (project / relative).parent.mkdir(parents=True, exist_ok=True)
        (project / relative).write_text(textwrap.dedent(text))
    commands = {
        name: (["train", f"configs/{name}.yaml", "--runs-root", project / "runs"], None)
        for name in ("callables", "pair")
    }
    return {"results": together(commands, cwd=project), "root": project / "runs"}


def validation_logits(run_dir: Path) -> tuple[torch.Tensor, torch.Tensor]:
    """The last checkpoint's Listed model (one linear layer) on the val split, by hand; and the labels."""
    weights = load(run_dir / "checkpoints" / "last.ckpt")["models"]["model"]
    val = Digits(split="val")
    return val.inputs.flatten(1) @ weights["net.1.weight"].T + weights["net.1.bias"], val.labels


def test_function_and_module_metrics_report_the_accuracy_over_the_whole_validation_split(runs):
    result = runs["results"]["callables"]
    assert result.returncode == 0, result.stderr
    run_dir = only_run_dir(runs["root"], "callables")
    assert (
        "target" not in read_config(run_dir)["metrics"]["acc"]
    )  # the task's target is not accuracy()'s target argument
    last = [row for row in read_history(run_dir) if row["val/acc"]][-1]
    logits, labels = validation_logits(run_dir)
    expected = accuracy_score(labels.numpy(), logits.argmax(dim=1).numpy())
    assert len(labels) % 128 != 0  # a smaller last batch: an unweighted mean of batch accuracies would differ
    assert float(last["val/acc"]) == pytest.approx(expected, abs=1e-6)
    assert float(last["val/acc_module"]) == pytest.approx(expected, abs=1e-6)


def test_a_model_returning_a_one_element_list_trains_on_the_listed_tensor(runs):
    assert runs["results"]["callables"].returncode == 0, runs["results"]["callables"].stderr
    run_dir = only_run_dir(runs["root"], "callables")
    logits, labels = validation_logits(run_dir)
    last = [row for row in read_history(run_dir) if row["val/loss"]][-1]
    assert float(last["val/loss"]) == pytest.approx(torch.nn.functional.cross_entropy(logits, labels).item(), rel=1e-5)


def test_an_until_class_is_built_from_its_keys_and_ends_the_stage_at_the_first_epoch_that_reaches_the_threshold(runs):
    assert runs["results"]["callables"].returncode == 0, runs["results"]["callables"].stderr
    epochs = [row for row in read_history(only_run_dir(runs["root"], "callables")) if row["val/acc"]]
    accuracies = [float(row["val/acc"]) for row in epochs]
    assert 1 < len(epochs) < 5, accuracies  # checked after every epoch, and it ended the 5-epoch stage early
    assert all(value < THRESHOLD for value in accuracies[:-1]) and accuracies[-1] >= THRESHOLD, accuracies


def test_a_model_returning_a_pair_for_one_declared_output_fails_naming_the_node_and_the_fix(runs):
    result = runs["results"]["pair"]
    assert result.returncode == 1
    assert result.stderr.splitlines()[-1] == (
        "expresso.engine.graph.GraphError: graph node 'model' (model 'model') returned a tuple of 2 values, but declares 1 output name "
        "['y_hat']: declare one name per value in the config's graph node ({model: model, inputs: [x], outputs: [y_hat, y_hat_1]}), "
        "or return 1 value"
    )
