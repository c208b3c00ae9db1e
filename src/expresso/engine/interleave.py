"""Which batch comes next: one loader, or several pipelines' loaders interleaved in a fixed, resumable order.

The order of an epoch's batches is a pure function of the loaders' lengths
and the stage's ``interleave`` setting, so a run resumed after batch k
replays the same schedule, and each loader starts at the number of its
batches among the first k.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from torch.utils.data import DataLoader

from .data import ResumableLoader, start_epoch
from .pipeline import Plan
from .stages import Stage
from .state import State


def interleave(
    lengths: Mapping[str, int], order: Sequence[str], mode: str | Mapping[str, int] = "round_robin"
) -> list[str]:
    """The pipeline of each batch of an epoch, in order, until every pipeline's data is used up.

    ``round_robin``: one batch of each in turn; ``sequential``: all of one,
    then the next; a mapping ``{name: n}``: n batches of each in turn (a
    ratio). A pipeline whose data runs out drops out of the turn.
    """
    if mode == "sequential":
        return [name for name in order for _ in range(lengths[name])]
    counts = {name: 1 for name in order} if isinstance(mode, str) else mode  # round_robin: one of each
    pattern = [name for name in order for _ in range(counts.get(name, 0))]
    left = dict(lengths)
    schedule: list[str] = []
    total = sum(left[name] for name in set(pattern))
    for name in itertools.cycle(pattern):
        if len(schedule) == total:
            break
        if left[name] > 0:
            left[name] -= 1
            schedule.append(name)
    return schedule


def epoch_batches(
    loaders: Mapping[str, DataLoader], plans: Mapping[str, Plan], stage: Stage, state: State, limit: int | None
) -> Iterator[tuple[Plan, Any]]:
    """The epoch's (plan, batch) pairs from ``state.batch_index`` on; sets ``state.epoch_length`` when it is known."""
    if len(loaders) == 1:
        ((name, loader),) = loaders.items()
        if isinstance(loader, ResumableLoader):
            start_epoch(loader, state.epoch, state.batch_index)
        state.epoch_length = _length(loader, state.batch_index, limit)
        plan = plans[name]
        return ((plan, batch) for batch in loader)
    lengths = {}
    for name, loader in loaders.items():
        if isinstance(loader, ResumableLoader):
            start_epoch(loader, state.epoch, 0)
        lengths[name] = len(loader)
    schedule = interleave(lengths, stage.trained, stage.interleave)[:limit]
    state.epoch_length = len(schedule)
    done = Counter(schedule[: state.batch_index])
    iterators = {}
    for name, loader in loaders.items():
        if isinstance(loader, ResumableLoader):
            start_epoch(loader, state.epoch, done[name])
        iterators[name] = iter(loader)
    return ((plans[name], next(iterators[name])) for name in schedule[state.batch_index :])


def _length(loader: DataLoader, done: int, limit: int | None) -> int | None:
    """Batches in the current epoch (counting those a resumed run already did), if known."""
    try:
        remaining = len(loader)
    except TypeError:  # an iterable dataset without a length
        return None
    total = done + remaining
    return min(total, limit) if limit is not None else total
