"""Every pipeline's loader per split, built from the run's settings, and batches moved to the training device.

Data given as datasets becomes resumable loaders (data.py): the training
split in ``trainer.batch_size`` batches, shuffled by (seed, epoch) when
``dataloader.shuffle`` is on; validation and test in
``trainer.eval_batch_size`` batches (default: ``batch_size``), in order and
whole. Several pipelines over one dataset shuffle differently (their seeds
differ). Data given as ready DataLoaders is read as given.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import torch
from torch.utils.data import DataLoader

from ..settings import DataLoaderConfig, TrainerConfig
from . import distributed
from .data import ResumableLoader, make_loader
from .devices import move
from .pipeline import Pipeline, Plan

SPLITS = ("train", "val", "test")
_PIPELINE_SEED_STRIDE = 100_003  # pipelines over one dataset shuffle differently


class Loaders(Mapping):
    """(pipeline name, split) -> its DataLoader, for the pairs that have data; and how a batch reaches the device."""

    def __init__(
        self,
        pipelines: Sequence[Pipeline],
        settings: TrainerConfig,
        loader_settings: DataLoaderConfig,
        device: torch.device,
    ):
        self.settings, self.loader_settings, self.device = settings, loader_settings, device
        pin = loader_settings.pin_memory
        self.pin_memory = device.type == "cuda" if pin == "auto" else bool(pin)
        self.non_blocking = device.type == "cuda" and self.pin_memory
        self._loaders: dict[tuple[str, str], DataLoader] = {}
        for index, pipeline in enumerate(pipelines):
            for split in SPLITS:
                loader = self.build(pipeline.data(split), train=split == "train", seed_offset=index)
                if loader is not None:
                    self._loaders[pipeline.name, split] = loader

    def __getitem__(self, key: tuple[str, str]) -> DataLoader:
        return self._loaders[key]

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(self._loaders)

    def __len__(self) -> int:
        return len(self._loaders)

    def build(self, data: Any, train: bool, seed_offset: int = 0) -> DataLoader | None:
        """A loader for ``data`` (a dataset; a DataLoader or None is returned as is)."""
        if data is None or isinstance(data, DataLoader):
            return data
        settings = self.settings
        batch_size = settings.batch_size if train else (settings.eval_batch_size or settings.batch_size)
        return make_loader(
            data,
            batch_size=batch_size,
            train=train,
            settings=self.loader_settings,
            seed=settings.seed + _PIPELINE_SEED_STRIDE * seed_offset,
            pin_memory=self.pin_memory,
            rank=distributed.rank(),  # several processes: each reads its shard (distributed.py)
            replicas=distributed.world_size(),
        )

    def first(self, split: str) -> DataLoader | None:
        """The loader of ``split`` of the first pipeline that has one."""
        return next((loader for (_, s), loader in self._loaders.items() if s == split), None)

    def has(self, split: str) -> bool:
        return any(s == split for _, s in self._loaders)

    def for_evaluation(self, pipeline: str, split: str) -> DataLoader:
        """The loader that evaluates ``split``: the training split is read as evaluation reads (in order, whole).

        A loader given ready-made is read as given.
        """
        loader = self._loaders[pipeline, split]
        if split == "train" and isinstance(loader, ResumableLoader):
            evaluated = self.build(loader.dataset, train=False)
            assert evaluated is not None  # a dataset always gets a loader
            return evaluated
        return loader

    def tensors(self, plan: Plan, batch: Any) -> dict[str, Any]:
        """A batch as the named tensors of ``plan``'s pipeline, on the training device."""
        tensors = plan.pipeline.tensors(batch)
        if self.device.type != "cpu":
            tensors = move(tensors, self.device, self.non_blocking)
        if self.settings.channels_last:  # the models' weights are channels_last too (trainer.channels_last)
            tensors = {name: _channels_last(value) for name, value in tensors.items()}
        return tensors


def _channels_last(value: Any) -> Any:
    """A 4-D floating tensor (a batch of images) in the channels_last memory format; anything else as it is."""
    if isinstance(value, torch.Tensor) and value.dim() == 4 and value.is_floating_point():
        return value.contiguous(memory_format=torch.channels_last)
    return value
