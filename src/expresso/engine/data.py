"""Data loaders whose order depends only on (seed, epoch), so a run can resume mid-epoch.

The training sampler draws each epoch's permutation from its own generator
seeded with ``seed + epoch`` and can start part-way through it; the loader
gets a private generator too, so creating an iterator never consumes the
global random stream (which dropout draws from). Together: the batches and
the dropout masks after a resume are the ones the uninterrupted run saw.

In-memory datasets that can index a whole batch at once (an unmodified
``TensorDataset``, or any dataset with ``supports_batch_indexing = True`` whose
``__getitem__`` takes a list of indices) get one gather per batch instead of
one ``__getitem__`` per sample plus a collate: the same tensors, for less work.
"""

from __future__ import annotations

from typing import Iterator

import torch
from torch.utils.data import BatchSampler, DataLoader, Dataset, Sampler, TensorDataset

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


class ResumableLoader(DataLoader):
    """A DataLoader whose order is a ``ResumableSampler`` (``order``), so an epoch can start part-way."""

    order: ResumableSampler
    rows_per_batch: int


def indexes_batches(dataset: Dataset) -> bool:
    """Whether ``dataset[list_of_indices]`` returns the whole batch."""
    if getattr(dataset, "supports_batch_indexing", False):
        return True
    return type(dataset).__getitem__ is TensorDataset.__getitem__


def make_loader(dataset: Dataset, *, batch_size: int, train: bool, settings, seed: int, pin_memory: bool) -> ResumableLoader:
    """A DataLoader with expresso's settings (``settings`` is the dataloader section)."""
    workers = settings["num_workers"]
    extra = {}
    if workers > 0:
        extra = {"persistent_workers": settings["persistent_workers"], "worker_init_fn": worker_init}
        if settings["prefetch_factor"] is not None:
            extra["prefetch_factor"] = settings["prefetch_factor"]
    order = ResumableSampler(len(dataset), shuffle=train and settings["shuffle"], seed=seed)
    drop_last = train and settings["drop_last"]
    common = {"num_workers": workers, "pin_memory": pin_memory, "generator": torch.Generator().manual_seed(seed), **extra}
    if indexes_batches(dataset):  # batch_size=None: each sampler item (a list of indices) is fetched as is
        loader = ResumableLoader(dataset, sampler=BatchSampler(order, batch_size, drop_last), batch_size=None, **common)
    else:
        loader = ResumableLoader(dataset, batch_size=batch_size, sampler=order, drop_last=drop_last, **common)
    loader.order, loader.rows_per_batch = order, batch_size
    return loader


def start_epoch(loader: ResumableLoader, epoch: int, batch_index: int = 0) -> None:
    """Point a loader at ``epoch``, skipping the ``batch_index`` batches already consumed."""
    loader.order.set_epoch(epoch, batch_index * loader.rows_per_batch)
    loader.generator.manual_seed(loader.order.seed + epoch)
