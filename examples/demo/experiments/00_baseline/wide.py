"""A wider MLP: the baseline's hyperparameters with two of them changed (runs named 00_baseline-wide)."""

from .hparams import hparams as base

hparams = {**base, "hidden": [256, 128], "dropout": 0.2}
