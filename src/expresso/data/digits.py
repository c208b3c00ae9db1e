"""scikit-learn's handwritten digits as a torch Dataset, with fixed train/val/test splits.

1797 grey 8x8 images shipped inside scikit-learn, so a real training runs
anywhere without a download. The split is stratified and depends only on
``seed`` and the fractions, so every run, model and task sees the same
images in the same split; ``train_fraction`` keeps a stratified part of the
training split (a small labelled set beside the whole one). ``target`` selects what is predicted, so one
dataset serves several tasks (a task config sets it by injection).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch.utils.data import Dataset

SPLITS = ("train", "val", "test")
TARGETS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "digit": lambda digit: digit,  # 10 classes
    "parity": lambda digit: digit % 2,  # 0 even, 1 odd
    "less_than_5": lambda digit: (digit < 5).astype(np.int64),  # 1 for 0-4
}


class Digits(Dataset):
    """Images as float tensors of shape (1, 8, 8) scaled to [0, 1], labels as int64.

    ``prepare_inputs(raw)`` turns scikit-learn's raw rows (64 values 0-16)
    into that form, for ``expresso predict --input``.

    ``dataset[[i, j, ...]]`` returns the whole batch: expresso's loaders fetch
    one batch with one gather instead of one item at a time.
    """

    supports_batch_indexing = True
    sample_names = ("x", "y")  # image, label: what a graph's nodes and losses may read

    def __init__(
        self,
        split: str = "train",
        target: str = "digit",
        val_fraction: float = 0.15,
        test_fraction: float = 0.15,
        seed: int = 0,
        train_fraction: float = 1.0,
    ):
        if split not in SPLITS:
            raise ValueError(f"Invalid value for argument `split`. Received: split={split!r}; expected one of {SPLITS}")
        if target not in TARGETS:
            raise ValueError(
                f"Invalid value for argument `target`. Received: target={target!r}; expected one of {tuple(TARGETS)}"
            )
        if not (0 < val_fraction < 1 and 0 < test_fraction < 1 and val_fraction + test_fraction < 1):
            raise ValueError(
                f"Invalid split fractions. Received: val_fraction={val_fraction}, test_fraction={test_fraction}; "
                "expected each in (0, 1) and together below 1"
            )
        from sklearn.datasets import load_digits
        from sklearn.model_selection import train_test_split

        digits = load_digits()
        indices = np.arange(len(digits.target))
        rest, test = train_test_split(indices, test_size=test_fraction, random_state=seed, stratify=digits.target)
        val_share = val_fraction / (1 - test_fraction)
        train, val = train_test_split(rest, test_size=val_share, random_state=seed, stratify=digits.target[rest])
        if not 0 < train_fraction <= 1:
            raise ValueError(
                f"Invalid value for argument `train_fraction`. Received: train_fraction={train_fraction}; expected a value in (0, 1]"
            )
        if train_fraction < 1:  # a small labelled subset (semi-supervised examples): stratified, fixed by seed
            train, _ = train_test_split(
                train, train_size=train_fraction, random_state=seed, stratify=digits.target[train]
            )
        chosen = {"train": train, "val": val, "test": test}[split]

        self.split, self.target = split, target
        self.indices = np.sort(chosen)  # positions in sklearn's load_digits(), for the record
        chosen = self.indices
        images = digits.images[chosen].astype(np.float32) / 16.0
        self.inputs = torch.from_numpy(images).unsqueeze(1)
        self.labels = torch.from_numpy(TARGETS[target](digits.target[chosen]).astype(np.int64))

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int | list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        return self.inputs[index], self.labels[index]

    def prepare_inputs(self, raw: torch.Tensor) -> torch.Tensor:
        """Raw images as the model reads them: what ``expresso predict --input`` applies to a file's inputs.

        ``raw`` is a float tensor with one image per row of its first
        dimension, as scikit-learn stores them: 64 pixel values 0-16 per row
        (``load_digits().data``; ``load_digits().images``, 8x8 each, works
        too). Returns them scaled to [0, 1] as a (N, 1, 8, 8) tensor, exactly
        what ``self.inputs`` holds for the same images. Raises ValueError for
        rows of another size, values outside 0-16, and inputs that are
        already scaled (every value in [0, 1], some fractional: pass those
        with ``--inputs-prepared``), which would otherwise be scaled twice.
        """
        raw = torch.as_tensor(raw, dtype=torch.float32)
        if raw.ndim < 2 or raw[0].numel() != 64:
            raise ValueError(
                f"Digits.prepare_inputs: expected 64 pixel values (0-16) per image, received inputs of shape {tuple(raw.shape)}"
            )
        low, high = raw.min().item(), raw.max().item()
        if low < 0 or high > 16:
            raise ValueError(
                f"Digits.prepare_inputs: expected pixel values 0-16, as load_digits() stores them; received values from {low:g} to {high:g}"
            )
        if high <= 1 and not torch.equal(raw, raw.round()):
            raise ValueError(
                "Digits.prepare_inputs: the inputs look already scaled to [0, 1] (every value at most 1, some fractional); "
                "expected raw pixel values 0-16, or pass scaled images with --inputs-prepared"
            )
        return (raw / 16.0).reshape(len(raw), 1, 8, 8)
