"""The data-bound case's dataset: digits whose every sample costs ~1 ms, like a decode or a disk read.

A sleep rather than real work so that loader workers can overlap it even on
a 2-core machine, which is what the case is about: whether a framework's
default loader settings hide data latency. It wraps ``expresso.data.Digits``
rather than subclassing it, so it reads one sample per ``__getitem__`` and
never inherits a batch-indexing fast path (``supports_batch_indexing``)
that would sleep once per batch. expresso's config names it as
``benchmarks/slow_data.py:SlowDigits``; the hand loop imports it.
"""

from __future__ import annotations

import time

from torch.utils.data import Dataset

from expresso.data import Digits


class SlowDigits(Dataset):
    """The samples of ``Digits(split, target, seed=seed)``, each after ``delay_ms`` of sleep."""

    def __init__(self, split: str = "train", target: str = "digit", delay_ms: float = 1.0, seed: int = 0):
        self.digits = Digits(split=split, target=target, seed=seed)
        self.delay_s = delay_ms / 1000

    def __len__(self) -> int:
        return len(self.digits)

    def __getitem__(self, index: int):
        time.sleep(self.delay_s)
        return self.digits[index]
