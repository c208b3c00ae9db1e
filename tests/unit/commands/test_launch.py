"""What ``expresso train`` refuses before it starts or joins several processes (no process group is made here)."""

from __future__ import annotations

from argparse import Namespace
from types import SimpleNamespace

import pytest

from expresso.commands import UsageError, launch


def _settings(**given):
    return {"devices": None, "strategy": "auto", "num_nodes": 1, "device": "cpu", **given}


def _never(args):
    raise AssertionError("no follower may start")


@pytest.fixture
def torchrun(monkeypatch):
    """This process as torchrun describes rank ``rank`` of 2 processes on one machine."""

    def world(rank: int) -> None:
        for key, value in {"RANK": rank, "LOCAL_RANK": rank, "WORLD_SIZE": 2, "LOCAL_WORLD_SIZE": 2}.items():
            monkeypatch.setenv(key, str(value))

    return world


def test_one_process_goes_on_as_before(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert launch.start(Namespace(), _settings(), _never) is None
    assert launch.start(Namespace(), _settings(devices=1, strategy="ddp"), _never) is None


def test_several_machines_are_started_by_torchrun_not_by_expresso(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    with pytest.raises(UsageError) as refused:
        launch.start(Namespace(), _settings(num_nodes=2, devices=4), _never)
    assert str(refused.value) == (
        "trainer.num_nodes=2: start the command on each machine under torchrun (torchrun --nnodes 2 --nproc-per-node 4"
        " ... -m expresso train ...); expresso launches the processes of one machine only"
    )


@pytest.mark.parametrize(
    "given, message",
    [
        (
            {"devices": 4},
            "trainer.devices=4, but torchrun started 2 process(es) on this machine (--nproc-per-node); expected them"
            " to agree (or trainer.devices: null under torchrun)",
        ),
        ({"strategy": "single"}, "trainer.strategy='single', but torchrun started 2 processes; expected ddp or auto"),
        (
            {"num_nodes": 2},
            "trainer.num_nodes=2, but torchrun started 2 process(es), 2 per machine; expected trainer.num_nodes=1",
        ),
    ],
)
def test_under_torchrun_the_settings_must_match_its_processes_rank_0_says_why(torchrun, given, message):
    torchrun(0)
    with pytest.raises(UsageError) as refused:
        launch.start(Namespace(), _settings(**given), _never)
    assert str(refused.value) == message


def test_the_other_ranks_refuse_in_silence_with_the_same_status(torchrun):
    torchrun(1)
    with pytest.raises(SystemExit) as refused:
        launch.start(Namespace(), _settings(devices=4), _never)
    assert refused.value.code == 2


@pytest.mark.parametrize(
    "codes, expected",
    [
        ({1: 1, 0: 2}, 0),  # rank 0 refused (exit 2); rank 1 lost its peer (exit 1) at the same second
        ({1: -9, 0: 1}, 1),  # rank 1 was killed; rank 0 lost its peer
        ({2: 1, 1: 3}, 1),  # rank 0 still running: the lowest rank that failed
        ({1: -15, 0: 2}, 0),  # rank 0 refused; the agent stopped rank 1 with SIGTERM
        ({0: -15, 1: 1}, 1),  # rank 1 failed; the agent stopped rank 0
        ({0: -15, 1: -15}, 0),  # every worker got SIGTERM (the launching process was stopped)
    ],
)
def test_the_exit_status_is_a_killed_workers_else_rank_0s_else_the_lowest_ranks(codes, expected):
    failures = {rank: SimpleNamespace(exitcode=code) for rank, code in codes.items()}
    assert launch._telling_failure(failures) == (expected, failures[expected])
