"""Resumable data order: each epoch's permutation depends only on (seed, epoch), and loading never touches torch's RNG; batch limits."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.utils.data import DataLoader, IterableDataset, TensorDataset

from expresso.engine.data import ResumableSampler, batch_limit, make_loader, start_epoch
from expresso.settings import DataLoaderConfig

LOADER = DataLoaderConfig(shuffle=True, num_workers=0, persistent_workers=False, prefetch_factor=None, drop_last=False)


def permutation(size: int, seed: int, epoch: int) -> list[int]:
    return torch.randperm(size, generator=torch.Generator().manual_seed(seed + epoch)).tolist()


def numbered(n: int) -> TensorDataset:
    return TensorDataset(torch.arange(n))


def batches(loader: DataLoader) -> list[list[int]]:
    return [batch[0].tolist() for batch in loader]


# -- the sampler -------------------------------------------------------------------


def test_each_epoch_is_the_permutation_drawn_from_seed_plus_epoch():
    sampler = ResumableSampler(10, shuffle=True, seed=3)
    orders = []
    for epoch in range(3):
        sampler.set_epoch(epoch)
        orders.append(list(sampler))
    assert orders == [permutation(10, 3, 0), permutation(10, 3, 1), permutation(10, 3, 2)]
    assert len({tuple(order) for order in orders}) == 3


def test_the_order_does_not_depend_on_the_global_rng_or_on_earlier_epochs():
    first = ResumableSampler(10, shuffle=True, seed=3)
    for epoch in range(4):
        first.set_epoch(epoch)
        list(first)
    torch.manual_seed(123)
    fresh = ResumableSampler(10, shuffle=True, seed=3)
    fresh.set_epoch(3)
    assert list(first) == list(fresh) == permutation(10, 3, 3)


@settings(max_examples=50, deadline=None)
@given(size=st.integers(1, 40), seed=st.integers(0, 2**31), epoch=st.integers(0, 50), data=st.data())
def test_starting_part_way_yields_exactly_the_rest_of_that_epochs_order(size, seed, epoch, data):
    start = data.draw(st.integers(0, size), label="start")
    sampler = ResumableSampler(size, shuffle=True, seed=seed)
    sampler.set_epoch(epoch)
    full = list(sampler)
    assert sorted(full) == list(range(size))
    sampler.set_epoch(epoch, start=start)
    assert list(sampler) == full[start:]
    assert len(sampler) == size - start


def test_a_start_past_the_end_yields_nothing_and_has_length_zero():
    # start_epoch asks for batch_index * batch_size: 3 batches of 4 over 10 samples -> start 12.
    loader = make_loader(numbered(10), batch_size=4, train=True, settings=LOADER, seed=5, pin_memory=False)
    start_epoch(loader, 0, batch_index=3)
    assert batches(loader) == []
    assert len(loader.sampler) == 0 and len(loader) == 0


def test_without_shuffle_the_order_is_the_dataset_order_from_the_start_offset():
    sampler = ResumableSampler(6, shuffle=False, seed=3)
    sampler.set_epoch(5, start=2)
    assert list(sampler) == [2, 3, 4, 5]


# -- the loader ----------------------------------------------------------------------


def test_iterating_a_loader_does_not_advance_the_global_torch_rng():
    loader = make_loader(numbered(10), batch_size=4, train=True, settings=LOADER, seed=0, pin_memory=False)
    torch.manual_seed(0)
    before = torch.get_rng_state()
    start_epoch(loader, 0)
    assert sorted(sum(batches(loader), [])) == list(range(10))
    assert torch.equal(torch.get_rng_state(), before)

    # What the check guards against: a default shuffling loader draws from the global generator.
    list(DataLoader(numbered(10), batch_size=4, shuffle=True))
    assert not torch.equal(torch.get_rng_state(), before)


def test_a_training_loader_resumed_mid_epoch_yields_the_remaining_batches():
    loader = make_loader(numbered(10), batch_size=4, train=True, settings=LOADER, seed=5, pin_memory=False)
    start_epoch(loader, 2)
    whole_epoch = batches(loader)
    assert sum(whole_epoch, []) == permutation(10, 5, 2)

    other = make_loader(numbered(10), batch_size=4, train=True, settings=LOADER, seed=5, pin_memory=False)
    start_epoch(other, 2, batch_index=1)
    assert batches(other) == whole_epoch[1:]


def test_evaluation_loaders_keep_dataset_order_and_the_last_partial_batch():
    loader = make_loader(
        numbered(10), batch_size=4, train=False, settings=replace(LOADER, drop_last=True), seed=5, pin_memory=False
    )
    assert batches(loader) == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]


def test_drop_last_drops_the_partial_training_batch():
    settings = replace(LOADER, shuffle=False, drop_last=True)
    loader = make_loader(numbered(10), batch_size=4, train=True, settings=settings, seed=5, pin_memory=False)
    assert batches(loader) == [[0, 1, 2, 3], [4, 5, 6, 7]]


# -- batched indexing ------------------------------------------------------------------------------
class _PerItem(torch.utils.data.Dataset):
    """The same data, fetched one item at a time (the plain DataLoader idiom), counting fetches."""

    def __init__(self, inner):
        self.inner, self.fetches = inner, 0

    def __len__(self):
        return len(self.inner)

    def __getitem__(self, index):
        self.fetches += 1
        return self.inner[index]


def test_a_batch_indexing_dataset_gives_the_same_batches_with_one_fetch_per_batch():
    from torch.utils.data import TensorDataset

    from expresso.engine.data import indexes_batches

    x, y = torch.randn(10, 3), torch.arange(10)
    batched, per_item = TensorDataset(x, y), _PerItem(TensorDataset(x, y))
    assert indexes_batches(batched) and not indexes_batches(per_item)
    loaders = [
        make_loader(d, batch_size=4, train=True, settings=LOADER, seed=5, pin_memory=False) for d in (batched, per_item)
    ]
    for epoch, start in ((0, 0), (3, 1)):
        for loader in loaders:
            start_epoch(loader, epoch, batch_index=start)
        a, b = (list(loader) for loader in loaders)
        assert len(a) == len(b) == len(loaders[0]) == 3 - start
        assert all(torch.equal(p, q) for batch_a, batch_b in zip(a, b) for p, q in zip(batch_a, batch_b))
    assert per_item.fetches == 10 + 6  # item by item; the batched loader made one gather per batch


def test_a_tensor_dataset_with_its_own_getitem_is_fetched_item_by_item():
    from torch.utils.data import TensorDataset

    from expresso.engine.data import indexes_batches

    class Augmented(TensorDataset):
        def __getitem__(self, index):
            x, y = super().__getitem__(index)
            return x * 2, y

    assert not indexes_batches(Augmented(torch.zeros(4, 1), torch.zeros(4)))


def test_digits_batches_equal_stacked_items():
    from expresso.data import Digits

    data = Digits(split="val")
    x, y = data[[3, 1, 4]]
    assert torch.equal(x, torch.stack([data[i][0] for i in (3, 1, 4)]))
    assert torch.equal(y, torch.stack([data[i][1] for i in (3, 1, 4)]))


# -- worker processes --------------------------------------------------------------------------------
class Noisy(torch.utils.data.Dataset):
    """A per-sample dataset with a random augmentation from all three generators (torch, numpy, random)."""

    def __len__(self):
        return 12

    def __getitem__(self, index):
        import random

        import numpy as np

        return torch.tensor([float(index), torch.rand(()).item(), float(np.random.rand()), random.random()])


def test_auto_workers_skip_in_memory_datasets_and_serve_per_sample_ones():
    from expresso.engine.data import resolve_workers

    assert resolve_workers("auto", numbered(10)) == 0
    assert 1 <= resolve_workers("auto", Noisy()) <= 8
    assert resolve_workers(3, numbered(10)) == 3


def test_augmentations_in_workers_do_not_depend_on_the_worker_count_or_on_a_mid_epoch_start():
    def epochs(workers: int, persistent: bool, start: tuple[int, int] = (0, 0)) -> list[torch.Tensor]:
        settings = replace(LOADER, num_workers=workers, persistent_workers=persistent)
        loader = make_loader(Noisy(), batch_size=4, train=True, settings=settings, seed=7, pin_memory=False)
        seen = []
        for epoch in range(start[0], 2):
            start_epoch(loader, epoch, start[1] if epoch == start[0] else 0)
            seen += list(loader)
        return seen

    one = epochs(1, persistent=False)
    assert len(one) == 6 and not torch.equal(one[0][:, 1:], one[3][:, 1:])  # each epoch draws anew
    two = epochs(2, persistent=True)
    assert all(torch.equal(a, b) for a, b in zip(one, two, strict=True))
    resumed = epochs(2, persistent=True, start=(1, 1))  # epoch 1 from its second batch
    assert all(torch.equal(a, b) for a, b in zip(one[4:], resumed, strict=True))


# -- trainer.limit_batches as a number of batches ---------------------------------------------------------
def batches_of_one(count: int) -> DataLoader:
    return DataLoader(TensorDataset(torch.zeros(count)), batch_size=1)


def test_a_batch_limit_count_is_kept_and_a_fraction_is_the_decimal_share_rounded_down_but_at_least_one():
    assert batch_limit(None, [batches_of_one(10)]) is None
    assert batch_limit(7, [batches_of_one(10)]) == 7
    assert batch_limit(0.29, [batches_of_one(100)]) == 29  # 0.29 * 100 is 28.999999999999996 in binary floats
    assert batch_limit(0.5, [batches_of_one(9)]) == 4
    assert batch_limit(0.01, [batches_of_one(9)]) == 1
    assert batch_limit(1.0, [batches_of_one(9)]) == 9
    assert (
        batch_limit(0.5, [batches_of_one(4), batches_of_one(6)]) == 5
    )  # interleaved loaders: a share of the epoch's batches


def test_a_fraction_of_a_loader_resumed_mid_epoch_counts_the_whole_epoch():
    loader = make_loader(
        TensorDataset(torch.arange(40)), batch_size=4, train=True, settings=LOADER, seed=0, pin_memory=False
    )
    start_epoch(loader, epoch=0, batch_index=6)
    assert len(loader) == 4
    assert batch_limit(0.5, [loader]) == 5
    assert len(loader) == 4  # and the loader still starts where the resumed epoch does


def test_a_fraction_of_a_loader_without_a_length_is_refused():
    class Stream(IterableDataset):
        def __iter__(self):
            return iter(range(3))

    with pytest.raises(ValueError) as info:
        batch_limit(0.5, [DataLoader(Stream())], "the training data")
    assert str(info.value) == (
        "limit_batches=0.5 is a fraction of each split's batches, but the training data has no length (an iterable dataset); "
        "give a number of batches instead (an integer)"
    )
    assert batch_limit(2, [DataLoader(Stream())]) == 2
