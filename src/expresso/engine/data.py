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

Worker processes (``num_workers: auto``, the default, gives them to datasets
read one sample at a time: those are the ones that decode or read files) see
each sample with the random generators seeded from (seed, epoch, index), so
random augmentations are the same with 1 or 16 workers, with persistent
workers, and after a mid-epoch resume. Without workers, a dataset draws from
the global stream, which checkpoints restore.
"""

from __future__ import annotations

import math
import os
import random
from collections.abc import Iterable, Iterator, Sized
from fractions import Fraction
from typing import Any, cast

import numpy as np
import torch
from torch.utils.data import BatchSampler, DataLoader, Dataset, Sampler, TensorDataset

from ..settings import DataLoaderConfig
from .seeding import worker_init

MAX_AUTO_WORKERS = 8


class ResumableSampler(Sampler[int]):
    """Each epoch's order from ``seed + epoch``; with ``seeded``, items are ``(sample seed, index)``.

    With ``replicas`` > 1 (several processes) each rank reads its share of
    that order as ``DistributedSampler`` deals it: every ``replicas``-th
    index from ``rank`` on, the order first padded with its own beginning to
    a multiple of ``replicas`` when ``pad`` (training: every rank takes as
    many steps); unpadded, the ranks' shares hold every sample once
    (evaluation). ``start`` counts this rank's samples, so a resumed epoch
    goes on where each rank was.
    """

    def __init__(
        self,
        size: int,
        shuffle: bool,
        seed: int,
        seeded: bool = False,
        rank: int = 0,
        replicas: int = 1,
        pad: bool = True,
    ):
        self.size, self.shuffle, self.seed, self.seeded = size, shuffle, seed, seeded
        self.rank, self.replicas, self.pad = rank, replicas, pad
        self.epoch, self.start = 0, 0

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        """Iterate epoch ``epoch``'s order from sample ``start`` (of this rank's share) on."""
        self.epoch, self.start = epoch, start

    def order(self) -> torch.Tensor:
        """This rank's share of the epoch's order (the whole order with one process)."""
        if not self.shuffle:
            order = torch.arange(self.size)
        else:
            generator = torch.Generator().manual_seed(self.seed + self.epoch)
            order = torch.randperm(self.size, generator=generator)
        if self.replicas == 1:
            return order
        if self.pad and self.size % self.replicas:
            total = math.ceil(self.size / self.replicas) * self.replicas
            order = torch.cat([order] * math.ceil(total / max(self.size, 1)))[:total]
        return order[self.rank :: self.replicas]

    def shard_size(self) -> int:
        if self.replicas == 1:
            return self.size
        if self.pad:
            return math.ceil(self.size / self.replicas)
        return len(range(self.rank, self.size, self.replicas))

    def __iter__(self) -> Iterator[Any]:
        indices = self.order()[self.start :].tolist()
        if not self.seeded:
            return iter(indices)
        return ((sample_seed(self.seed, self.epoch, index), index) for index in indices)

    def __len__(self) -> int:
        return max(self.shard_size() - self.start, 0)  # a checkpoint after an epoch's last (partial) batch


class ResumableLoader(DataLoader):
    """A DataLoader whose order is a ``ResumableSampler`` (``order``), so an epoch can start part-way."""

    order: ResumableSampler
    rows_per_batch: int


def sample_seed(seed: int, epoch: int, index: int) -> int:
    """A 63-bit seed for one sample of one epoch (splitmix64 of the three): no two collide in practice."""
    value = (seed * 0x9E3779B97F4A7C15 + epoch * 0xBF58476D1CE4E5B9 + index * 0x94D049BB133111EB) % 2**64
    value = ((value ^ (value >> 30)) * 0xBF58476D1CE4E5B9) % 2**64
    value = ((value ^ (value >> 27)) * 0x94D049BB133111EB) % 2**64
    return (value ^ (value >> 31)) >> 1


class SeededSamples(Dataset):
    """Reads ``dataset[index]`` for a ``(sample seed, index)`` item after seeding torch (CPU), numpy and random with it.

    Used in worker processes only: reseeding there cannot disturb the
    training process's own random stream. A plain integer index reads
    without seeding (``loader.dataset[0]`` in the main process).
    """

    def __init__(self, dataset: Dataset):
        self.dataset = dataset

    def __len__(self) -> int:
        return len(cast(Sized, self.dataset))  # a map-style dataset: it has a length

    def __getitem__(self, item: Any) -> Any:
        if isinstance(item, tuple):
            seed, item = item
            torch.default_generator.manual_seed(
                seed
            )  # CPU only: torch.manual_seed also visits every device backend (~80 us)
            random.seed(seed)
            np.random.seed(seed % 2**32)
        return self.dataset[item]


def resolve_workers(setting: int | str, dataset: Dataset) -> int:
    """``auto``: none for datasets gathered a batch at a time (in memory: a gather beats any IPC), else one per CPU, up to 8."""
    if setting != "auto":
        return int(setting)
    if indexes_batches(dataset):
        return 0
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cpus = os.cpu_count() or 1
    return max(1, min(cpus, MAX_AUTO_WORKERS))


def indexes_batches(dataset: Dataset) -> bool:
    """Whether ``dataset[list_of_indices]`` returns the whole batch."""
    if getattr(dataset, "supports_batch_indexing", False):
        return True
    return type(dataset).__getitem__ is TensorDataset.__getitem__


def make_loader(
    dataset: Dataset,
    *,
    batch_size: int,
    train: bool,
    settings: DataLoaderConfig,
    seed: int,
    pin_memory: bool,
    rank: int = 0,
    replicas: int = 1,
) -> ResumableLoader:
    """A DataLoader with expresso's settings (``settings``: the dataloader section); ``rank`` of ``replicas`` reads its shard."""
    if isinstance(dataset, SeededSamples):  # a loader's dataset handed back (``expresso predict --split``)
        dataset = dataset.dataset
    workers = resolve_workers(settings.num_workers, dataset)
    extra: dict[str, Any] = {}
    if workers > 0:
        persistent = settings.persistent_workers
        extra = {"persistent_workers": persistent == "auto" or persistent, "worker_init_fn": worker_init}
        if settings.prefetch_factor is not None:
            extra["prefetch_factor"] = settings.prefetch_factor
    batched = indexes_batches(dataset)
    seeded = workers > 0 and not batched
    order = ResumableSampler(
        len(cast(Sized, dataset)),
        shuffle=train and settings.shuffle,
        seed=seed,
        seeded=seeded,
        rank=rank,
        replicas=replicas,
        pad=train,
    )
    drop_last = train and settings.drop_last
    common: dict[str, Any] = {
        "num_workers": workers,
        "pin_memory": pin_memory,
        "generator": torch.Generator().manual_seed(seed),
        **extra,
    }
    if batched:  # batch_size=None: each sampler item (a list of indices) is fetched as is
        loader = ResumableLoader(dataset, sampler=BatchSampler(order, batch_size, drop_last), batch_size=None, **common)
    else:
        source = SeededSamples(dataset) if seeded else dataset
        loader = ResumableLoader(source, batch_size=batch_size, sampler=order, drop_last=drop_last, **common)
    loader.order, loader.rows_per_batch = order, batch_size
    return loader


def start_epoch(loader: ResumableLoader, epoch: int, batch_index: int = 0) -> None:
    """Point a loader at ``epoch``, skipping the ``batch_index`` batches already consumed."""
    loader.order.set_epoch(epoch, batch_index * loader.rows_per_batch)
    loader.generator.manual_seed(loader.order.seed + epoch)


def batch_limit(limit: int | float | None, loaders: Iterable[DataLoader], what: str = "the data") -> int | None:
    """``trainer.limit_batches`` as a number of batches of ``loaders`` together (one loader, or a stage's interleaved ones).

    An integer is a count; a float is a fraction of the loaders' batches,
    rounded down but at least one batch (Lightning's rule, which refuses a
    fraction below one batch where this takes one): 0.1 of 40 batches is 4,
    0.1 of 9 is 1. The fraction is read as the decimal written (0.1 of 30 is
    3, where the binary float would make it 3.0000000000000004).
    """
    if limit is None or not isinstance(limit, float):
        return limit
    try:
        batches = sum(_epoch_length(loader) for loader in loaders)
    except TypeError:  # an iterable dataset: no length, so no fraction of it
        raise ValueError(
            f"limit_batches={limit!r} is a fraction of each split's batches, but {what} has no length (an iterable dataset); "
            "give a number of batches instead (an integer)"
        ) from None
    return max(1, math.floor(Fraction(repr(limit)) * batches))


def _epoch_length(loader: DataLoader) -> int:
    """The batches of a whole epoch: a resumed epoch's loader starts part-way, and its len() counts only what is left."""
    if not isinstance(loader, ResumableLoader):
        return len(loader)
    start, loader.order.start = loader.order.start, 0
    try:
        return len(loader)
    finally:
        loader.order.start = start
