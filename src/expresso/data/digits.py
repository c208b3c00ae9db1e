"""scikit-learn's handwritten digits as a torch Dataset, with fixed train/val/test splits.

1797 grey 8x8 images shipped inside scikit-learn, so a real training runs
anywhere without a download. The split is stratified and depends only on
``seed`` and the fractions, so every run, model and task sees the same
images in the same split; ``train_fraction`` keeps a stratified part of the
training split (a small labelled set beside the whole one). ``target`` selects what is predicted, so one
dataset serves several tasks (a task config sets it by injection).

Without importing scikit-learn where it can: importing it (with the SciPy
and pandas it loads) takes about 1.8 s of a process's start on 2 cores,
more than a whole training of the digits MLP. The images are read from
scikit-learn's own file as ``load_digits()`` reads it, and the splits the
examples use ship in ``digits_splits.npz``: what ``train_test_split``
computes for them (tests/unit/data/test_digits.py recomputes each).
Other seeds and fractions are computed with scikit-learn, as before.
"""

from __future__ import annotations

import functools
import gzip
import importlib.util
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

SPLITS = ("train", "val", "test")
SHIPPED_SPLITS = Path(__file__).with_name("digits_splits.npz")
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
        if not 0 < train_fraction <= 1:
            raise ValueError(
                f"Invalid value for argument `train_fraction`. Received: train_fraction={train_fraction}; expected a value in (0, 1]"
            )
        images, digits = load_images()
        chosen = shipped_split(split, seed, val_fraction, test_fraction, train_fraction)
        if chosen is None:
            chosen = compute_split(digits, seed, val_fraction, test_fraction, train_fraction)[split]

        self.split, self.target = split, target
        self.indices = chosen  # positions in sklearn's load_digits(), for the record
        self.inputs = torch.from_numpy(images[chosen].astype(np.float32) / 16.0).unsqueeze(1)
        self.labels = torch.from_numpy(TARGETS[target](digits[chosen]).astype(np.int64))

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


@functools.lru_cache(maxsize=1)  # a run builds three splits; nobody writes to the arrays (the splits copy theirs)
def load_images() -> tuple[np.ndarray, np.ndarray]:
    """``load_digits()``'s images (1797 x 8 x 8, values 0-16) and digits, read from its file without importing it."""
    spec = importlib.util.find_spec("sklearn")  # finds the package without running it
    locations = spec.submodule_search_locations if spec else None
    path = Path(locations[0], "datasets", "data", "digits.csv.gz") if locations else None
    if path is None or not path.is_file():  # another layout: scikit-learn's own loader
        from sklearn.datasets import load_digits

        digits = load_digits()
        return digits.images, digits.target
    with gzip.open(path, mode="rt", encoding="utf-8") as text:  # what load_digits() does with the same file
        data = np.loadtxt(text, delimiter=",")
    return data[:, :-1].reshape(-1, 8, 8), data[:, -1].astype(int)


def split_key(seed: int, val_fraction: float, test_fraction: float, train_fraction: float) -> str:
    return f"seed={seed!r} val={float(val_fraction)!r} test={float(test_fraction)!r} train={float(train_fraction)!r}"


def shipped_split(
    split: str, seed: int, val_fraction: float, test_fraction: float, train_fraction: float
) -> np.ndarray | None:
    """The split's sorted indices from digits_splits.npz, or None when these settings are not shipped."""
    name = f"{split_key(seed, val_fraction, test_fraction, train_fraction)} {split}"
    with np.load(SHIPPED_SPLITS) as shipped:
        return shipped[name].astype(np.int64) if name in shipped.files else None


def compute_split(
    digits: np.ndarray, seed: int, val_fraction: float, test_fraction: float, train_fraction: float
) -> dict[str, np.ndarray]:
    """Each split's sorted indices, stratified by digit, with scikit-learn's ``train_test_split``."""
    from sklearn.model_selection import train_test_split

    indices = np.arange(len(digits))
    rest, test = train_test_split(indices, test_size=test_fraction, random_state=seed, stratify=digits)
    val_share = val_fraction / (1 - test_fraction)
    train, val = train_test_split(rest, test_size=val_share, random_state=seed, stratify=digits[rest])
    if train_fraction < 1:  # a small labelled subset (semi-supervised examples): stratified, fixed by seed
        train, _ = train_test_split(train, train_size=train_fraction, random_state=seed, stratify=digits[train])
    return {"train": np.sort(train), "val": np.sort(val), "test": np.sort(test)}


# The settings whose splits ship: the defaults, and the semi-supervised example's labelled tenth.
SHIPPED_SETTINGS = ((0, 0.15, 0.15, 1.0), (0, 0.15, 0.15, 0.1))


def write_shipped_splits(path: Path = SHIPPED_SPLITS) -> None:
    """digits_splits.npz from scikit-learn (``python -c 'from expresso.data.digits import *; write_shipped_splits()'``)."""
    _, digits = load_images()
    arrays = {
        f"{split_key(*settings)} {split}": indices.astype(np.int16)
        for settings in SHIPPED_SETTINGS
        for split, indices in compute_split(digits, *settings).items()
    }
    np.savez_compressed(path, **arrays)  # type: ignore[arg-type]  # numpy's stub reads a key as allow_pickle
