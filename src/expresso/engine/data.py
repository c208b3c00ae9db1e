"""Data loaders whose order depends only on (seed, epoch), so a run can resume mid-epoch.

The training sampler draws each epoch's permutation from its own generator
seeded with ``seed + epoch`` and can start part-way through it; the loader
gets a private generator too, so creating an iterator never consumes the
global random stream (which dropout draws from). Together: the batches and
the dropout masks after a resume are the ones the uninterrupted run saw.
"""

from __future__ import annotations

from typing import Iterator

import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from .seeding import worker_init


class ResumableSampler(Sampler[int]):
    def __init__(self, size: int, shuffle: bool, seed: int):
        self.size, self.shuffle, self.seed = size, shuffle, seed
        self.epoch, self.start = 0, 0

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        """Iterate epoch ``epoch``'s order from sample ``start`` on."""
        self.epoch, self.start = epoch, start

    def order(self) -> torch.Tensor:
        if not self.shuffle:
            return torch.arange(self.size)
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        return torch.randperm(self.size, generator=generator)

    def __iter__(self) -> Iterator[int]:
        return iter(self.order()[self.start :].tolist())

    def __len__(self) -> int:
        return max(self.size - self.start, 0)  # a checkpoint after an epoch's last (partial) batch


def make_loader(dataset: Dataset, *, batch_size: int, train: bool, settings, seed: int, pin_memory: bool) -> DataLoader:
    """A DataLoader with expresso's settings (``settings`` is the dataloader section)."""
    workers = settings["num_workers"]
    extra = {}
    if workers > 0:
        extra = {"persistent_workers": settings["persistent_workers"], "worker_init_fn": worker_init}
        if settings["prefetch_factor"] is not None:
            extra["prefetch_factor"] = settings["prefetch_factor"]
    sampler = ResumableSampler(len(dataset), shuffle=train and settings["shuffle"], seed=seed)
    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        num_workers=workers,
        pin_memory=pin_memory,
        drop_last=train and settings["drop_last"],
        generator=torch.Generator().manual_seed(seed),
        **extra,
    )


def start_epoch(loader: DataLoader, epoch: int, batch_index: int = 0) -> None:
    """Point a loader at ``epoch``, skipping the ``batch_index`` batches already consumed."""
    loader.sampler.set_epoch(epoch, batch_index * loader.batch_size)
    loader.generator.manual_seed(loader.sampler.seed + epoch)
