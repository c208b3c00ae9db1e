"""What this experiment folder trains and predicts with, built from an hparams dict in code.

expresso calls ``train_config(hparams)`` for `expresso train
experiments/00_baseline/<hparams file>.py` and trains the config it returns:
the same tree a YAML experiment holds (file references such as
``datasets/digits.yaml`` resolve in the project's configs/), so the run
folder's config.yaml records it and `expresso resume` continues it.
``infer_config(hparams, *args)`` gets the extra arguments of `expresso
predict RUN ...`.
"""

from __future__ import annotations

import torch


def train_config(hparams: dict) -> dict:
    return {
        "dataset": {
            "class": "demo.datasets.Digits",
            "transform": {"class": "demo.transforms.RandomShift", "pixels": hparams["shift"]},
        },
        "task": "tasks/digits.yaml",
        "model": {"class": "demo.models.MLP", "hidden": hparams["hidden"], "dropout": hparams["dropout"]},
        "loss": {"class": "torch.nn.CrossEntropyLoss"},
        "optimizer": {"class": "torch.optim.AdamW", "lr": hparams["lr"], "weight_decay": hparams["weight_decay"]},
        "metrics": {"acc": {"class": "torchmetrics.classification.MulticlassAccuracy", "average": "micro"}},
        "trainer": {
            "max_epochs": hparams["epochs"],
            "batch_size": hparams["batch_size"],
            "seed": 0,
            "monitor": "val/acc",
            "mode": "max",
        },
    }


def infer_config(hparams: dict, *digits: str) -> dict:
    """`expresso predict RUN 3 8`: the test images of those digits (all without arguments), with their true digit.

    Returns what to predict with: ``data`` (what the model reads: a tensor
    or a dataset) and ``output`` (a function of the model's outputs giving
    the columns to write).
    """
    from demo.datasets import Digits

    test = Digits(split="test")
    wanted = torch.tensor([int(digit) for digit in digits] or list(range(10)))
    keep = torch.isin(test.digits, wanted)

    def output(logits: torch.Tensor) -> dict:
        probabilities = logits.softmax(1)
        return {
            "digit": test.digits[keep],
            "prediction": probabilities.argmax(1),
            "probability": probabilities.max(1).values,
        }

    return {"data": test.images[keep], "output": output}
