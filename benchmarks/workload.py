"""Builds a case's model, data and loaders for the hand loop and the peers.

Why its own file: the seeded init and the data order are the two things that
make "the same work" true, so they are written once. ``EpochPermutation``
draws each epoch's permutation the way expresso's sampler does
(``randperm(n, Generator().manual_seed(seed + epoch))``), at the cost of
``DataLoader(shuffle=True)``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch
from torch.utils.data import DataLoader, Sampler

from .cases import Case


class EpochPermutation(Sampler[int]):
    """A shuffling sampler whose order depends only on (seed, epoch).

    ``set_epoch`` is the DistributedSampler idiom: Lightning and Accelerate
    call it by themselves, the hand loop and ignite at each epoch start.
    """

    def __init__(self, size: int, seed: int):
        self.size, self.seed, self.epoch = size, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self) -> Iterator[int]:  # a generator: the order is drawn at the first batch, after set_epoch
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        yield from torch.randperm(self.size, generator=generator).tolist()

    def __len__(self) -> int:
        return self.size


def build_model(case: Case) -> torch.nn.Module:
    """The case's model with seeded initial weights (expresso seeds the same way before building it)."""
    from expresso.models import MLP, SmallCNN

    torch.manual_seed(case.seed)
    if case.model == "mlp":
        return MLP(num_classes=10, in_features=64, hidden=[64])
    if case.model == "cnn":
        return SmallCNN(num_classes=10, in_channels=1, channels=[16, 32], image_size=8)
    if case.model == "resnet":
        from .real_job import SmallResNet

        return SmallResNet(num_classes=10)
    raise ValueError(f"Invalid value for `model`. Received: model={case.model!r}; expected 'mlp', 'cnn' or 'resnet'")


def datasets(case: Case, splits: tuple[str, ...] = ("train", "val")) -> tuple:
    """The splits expresso's config builds (digits, slowed down in the data-bound case; synthetic images).

    The hand script's final evaluation asks for ``("test",)`` too, which ``expresso train`` evaluates after its fit.
    """
    if case.model == "resnet":
        from .real_job import SyntheticImages as Split
    elif case.slow:
        from .slow_data import SlowDigits as Split
    else:
        from expresso.data import Digits as Split
    return tuple(Split(split=split) for split in splits)


def loaders(case: Case, num_workers: int = 0) -> tuple[DataLoader, DataLoader, EpochPermutation]:
    """(train loader, val loader, the train sampler): the plain DataLoader idiom."""
    train_set, val_set = datasets(case)
    order = EpochPermutation(len(train_set), case.seed)
    train = DataLoader(train_set, batch_size=case.batch_size, sampler=order, num_workers=num_workers)
    val = DataLoader(val_set, batch_size=case.batch_size, num_workers=num_workers)
    return train, val, order


def fit_result(seconds: float, first_step_at: float | None, val_acc: float, steps: int, **extra: Any) -> dict:
    """What one fit reports, whichever framework ran it (``first_step_at`` is wall-clock time.time())."""
    return {
        "seconds": seconds,
        "first_step_at": first_step_at,
        "val_acc": val_acc,
        "steps": steps,
        "threads": torch.get_num_threads(),
        **extra,
    }
