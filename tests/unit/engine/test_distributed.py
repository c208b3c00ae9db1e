"""Several processes, the parts one process can check: each rank's share of the data, and what --check refuses.

The processes themselves (torchrun, DDP, gloo) are tested through the CLI in
tests/integration/test_cli_distributed.py.
"""

from __future__ import annotations

import pytest
import torch
from torch.utils.data import DistributedSampler

from expresso.engine.data import ResumableSampler
from expresso.engine.distributed import local_processes, problems


@pytest.mark.parametrize("size", [10, 11, 1257, 3])
@pytest.mark.parametrize("replicas", [2, 3, 4])
@pytest.mark.parametrize("shuffle", [True, False])
def test_a_training_shard_is_what_torchs_distributed_sampler_deals(size, replicas, shuffle):
    """The order (seed + epoch), the padding and the dealing are DistributedSampler's, epoch after epoch."""
    for rank in range(replicas):
        ours = ResumableSampler(size, shuffle=shuffle, seed=7, rank=rank, replicas=replicas, pad=True)
        theirs = DistributedSampler(range(size), num_replicas=replicas, rank=rank, shuffle=shuffle, seed=7)
        for epoch in (0, 1, 5):
            ours.set_epoch(epoch)
            theirs.set_epoch(epoch)
            assert list(ours) == list(theirs)
            assert len(ours) == len(theirs)


def test_a_resumed_shard_goes_on_where_its_rank_was():
    sampler = ResumableSampler(1257, shuffle=True, seed=3, rank=1, replicas=2)
    sampler.set_epoch(4)
    whole = list(sampler)
    sampler.set_epoch(4, start=5 * 64)  # five local batches of 64 consumed before the checkpoint
    assert list(sampler) == whole[5 * 64 :]
    assert len(sampler) == len(whole) - 5 * 64


@pytest.mark.parametrize("size, replicas", [(360, 2), (361, 2), (7, 3), (2, 3)])
def test_evaluation_shards_hold_every_sample_once(size, replicas):
    """Unpadded: a padded sample would count twice in the global metrics."""
    shards = [
        list(ResumableSampler(size, shuffle=False, seed=0, rank=r, replicas=replicas, pad=False))
        for r in range(replicas)
    ]
    assert sorted(index for shard in shards for index in shard) == list(range(size))
    assert [len(ResumableSampler(size, False, 0, rank=r, replicas=replicas, pad=False)) for r in range(replicas)] == [
        len(shard) for shard in shards
    ]


def test_one_process_reads_the_whole_order():
    sampler = ResumableSampler(10, shuffle=True, seed=1)
    sampler.set_epoch(2)
    assert list(sampler) == torch.randperm(10, generator=torch.Generator().manual_seed(3)).tolist()


def _settings(**given):
    return {"devices": None, "strategy": "auto", "num_nodes": 1, "device": "auto", **given}


@pytest.mark.parametrize(
    "given, cuda, expected",
    [
        ({"devices": 2}, 0, 2),
        ({"devices": "auto"}, 0, 1),
        ({"devices": "auto"}, 4, 4),
        ({"devices": "auto", "device": "cpu"}, 4, 1),
        ({"devices": [1, 3]}, 4, 2),
        ({}, 4, 1),
    ],
)
def test_processes_on_this_machine(given, cuda, expected):
    settings = _settings(**given)
    assert local_processes(settings["devices"], settings["device"], cuda) == expected


@pytest.mark.parametrize(
    "given, cuda, expected",
    [
        (
            {"strategy": "single", "devices": 2},
            0,
            [
                (
                    "trainer.strategy",
                    "received 'single', but trainer.devices=2 and trainer.num_nodes=1 ask for more than one process;"
                    " expected ddp or auto",
                )
            ],
        ),
        (
            {"devices": [0, 1], "device": "cpu"},
            2,
            [
                (
                    "trainer.devices",
                    "received [0, 1], a list of CUDA device indices, but training is not on CUDA here"
                    " (trainer.device='cpu', 2 CUDA device(s)); expected a number of processes",
                )
            ],
        ),
        ({"devices": [0, 2]}, 2, [("trainer.devices", "received [0, 2], but this machine has 2 CUDA device(s)")]),
        ({"devices": 3}, 2, [("trainer.devices", "received 3, but this machine has 2 CUDA device(s)")]),
        (
            {"devices": 2, "device": "cuda:1"},
            2,
            [
                (
                    "trainer.devices",
                    "received 2, but trainer.device='cuda:1' names one device; expected auto or cuda (each process"
                    " takes its own) or cpu",
                )
            ],
        ),
        ({"devices": 2, "device": "cpu"}, 0, []),
        ({"devices": 2, "strategy": "ddp"}, 0, []),
        ({"devices": [0, 1]}, 2, []),
    ],
)
def test_check_refuses_what_this_machine_or_the_other_settings_cannot_honour(given, cuda, expected):
    assert problems(_settings(**given), device_count=cuda) == expected


def test_leaving_frees_the_group_with_the_ddp_wrappers_an_unreachable_trainer_still_holds(tmp_path):
    """teardown collects the cycles first: a group freed later, by a finalizing interpreter, killed gloo ranks (SIGABRT)."""
    import gc
    import weakref

    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    from expresso.engine.distributed import teardown

    collecting = gc.isenabled()
    gc.disable()  # only teardown's own collection may free the cycle
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'group'}", rank=0, world_size=1)
    try:
        trainer: dict = {"wrapped": DistributedDataParallel(torch.nn.Linear(2, 1))}
        trainer["self"] = trainer  # a trainer's callbacks point back at it: a cycle
        wrapper = weakref.ref(trainer["wrapped"])
        del trainer
        assert wrapper() is not None
        teardown()
        assert not dist.is_initialized()
        assert wrapper() is None, "the DDP wrapper (and the group its reducer holds) outlived teardown"
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
        if collecting:
            gc.enable()
