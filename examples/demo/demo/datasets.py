"""scikit-learn's 8x8 digits (shipped with scikit-learn: no download) as a dataset with train/val/test splits.

A model of your own data starts here: keep the constructor's ``split``
argument (expresso builds the dataset once per split, passing it) and return
``(input, target)`` pairs. ``target`` comes from the task config
(configs/tasks/), which expresso injects into every component that takes it.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch.utils.data import Dataset

SPLITS = ("train", "val", "test")
TARGETS = ("digit", "image")  # the class (classification, a conditional GAN) or the image itself (an autoencoder)


class Digits(Dataset):
    """Images (1, 8, 8) scaled to [0, 1]; targets are the digit (int64) or, for ``target="image"``, the clean image.

    ``transform`` (from transforms.py) changes the inputs of the training
    split only, so validation and test figures measure clean images.
    ``dataset[[i, j, ...]]`` returns a whole batch at once
    (``supports_batch_indexing``): expresso gathers one batch per step
    instead of one sample at a time.
    """

    supports_batch_indexing = True
    sample_names = ("x", "y")  # what a graph's nodes and losses may read (the gan template's graph does)

    def __init__(
        self,
        split: str = "train",
        target: str = "digit",
        val_fraction: float = 0.15,
        test_fraction: float = 0.15,
        seed: int = 0,
        transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
    ):
        if split not in SPLITS:
            raise ValueError(f"Invalid value for argument `split`. Received: split={split!r}; expected one of {SPLITS}")
        if target not in TARGETS:
            raise ValueError(
                f"Invalid value for argument `target`. Received: target={target!r}; expected one of {TARGETS}"
            )
        from sklearn.datasets import load_digits
        from sklearn.model_selection import train_test_split

        digits = load_digits()
        indices = np.arange(len(digits.target))
        rest, test = train_test_split(indices, test_size=test_fraction, random_state=seed, stratify=digits.target)
        train, val = train_test_split(
            rest, test_size=val_fraction / (1 - test_fraction), random_state=seed, stratify=digits.target[rest]
        )
        chosen = np.sort({"train": train, "val": val, "test": test}[split])
        self.split, self.target_kind = split, target
        self.images = torch.from_numpy(digits.images[chosen].astype(np.float32) / 16.0).unsqueeze(1)
        self.digits = torch.from_numpy(digits.target[chosen].astype(np.int64))
        self.augment = transform if split == "train" else None

    def __len__(self) -> int:
        return len(self.digits)

    def __getitem__(self, index: int | list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        images = self.images[index]
        target = images if self.target_kind == "image" else self.digits[index]
        inputs = self.augment(images) if self.augment is not None else images
        return inputs, target

    def prepare_inputs(self, raw: torch.Tensor) -> torch.Tensor:
        """Raw rows of 64 pixel values 0-16 (as ``load_digits().data`` holds them) as the model reads them.

        ``expresso predict RUN --input FILE`` applies it to a file's rows.
        """
        raw = torch.as_tensor(raw, dtype=torch.float32)
        if raw.ndim < 2 or raw[0].numel() != 64:
            raise ValueError(f"expected 64 pixel values per row, received inputs of shape {tuple(raw.shape)}")
        return (raw / 16.0).reshape(len(raw), 1, 8, 8)
