"""The baseline's hyperparameters: a plain dict, turned into a config by train_config in __main__.py.

Train it with `expresso train experiments/00_baseline/hparams.py` (its runs
are named 00_baseline-hparams); a variant is a file beside it that imports
this one (wide.py).
"""

hparams = {
    "hidden": [128, 64],
    "dropout": 0.1,
    "shift": 1,  # pixels of RandomShift augmentation
    "lr": 3.0e-3,
    "weight_decay": 0.01,
    "epochs": 20,
    "batch_size": 64,
}
