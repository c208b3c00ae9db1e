"""The checkpoint writer thread: what a write copies, the order writes run in, and where their failures are raised."""

from __future__ import annotations

import functools
import json
import threading
from collections import OrderedDict

import pytest
import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.data import TensorDataset

from expresso.callbacks import Checkpoint
from expresso.engine import Callback, Trainer, snapshot
from expresso.engine.checkpoints.errors import CheckpointWriteError
from expresso.engine.checkpoints.io import load_checkpoint
from expresso.engine.checkpoints.writer import Writes, detached

# -- detached: the copy a write serializes ----------------------------------------------------------


def test_detached_copies_every_tensor_so_training_can_no_longer_change_what_is_written():
    weight = torch.ones(3)
    payload = {"models": {"m": OrderedDict(weight=weight)}, "rng": (1, torch.arange(3)), "top": [[0.5, "a"]]}
    copied = detached(payload)
    weight.add_(1)  # the next optimizer step
    payload["top"][0][0] = 0.1  # a callback's list, changed by the next epoch
    assert torch.equal(copied["models"]["m"]["weight"], torch.ones(3))
    assert copied["top"] == [[0.5, "a"]]
    assert isinstance(copied["rng"], tuple) and torch.equal(copied["rng"][1], torch.arange(3))


def test_detached_keeps_one_tensor_under_two_names_as_one_and_a_state_dicts_metadata():
    model = nn.BatchNorm1d(2)
    state = model.state_dict()
    state["alias"] = state["weight"]  # tied weights: one tensor under two names
    copied = detached({"models": {"m": state}})["models"]["m"]
    assert copied["alias"] is copied["weight"] and copied["weight"] is not state["weight"]
    assert type(copied) is OrderedDict and copied._metadata == state._metadata  # module versions, read on load


# -- Writes: order, thread, failures -----------------------------------------------------------------


def test_writes_run_in_order_on_the_writer_thread_and_wait_returns_once_all_are_done():
    done, threads = [], set()
    release = threading.Event()

    def job(n):
        release.wait(5)
        threads.add(threading.current_thread().name)
        done.append(n)

    writes = Writes()
    for n in range(3):
        writes.submit(functools.partial(job, n), then=functools.partial(done.append, f"then {n}"))
    assert done == []  # handed over: the caller went on
    release.set()
    writes.wait()
    assert done == [0, "then 0", 1, "then 1", 2, "then 2"]
    assert len(threads) == 1 and next(iter(threads)).startswith("expresso-checkpoint")


def test_a_failed_write_is_raised_at_the_next_wait_and_its_then_never_runs():
    ran = []

    def fails():
        raise CheckpointWriteError("last.ckpt: cannot write (No space left on device); the previous file is intact")

    writes = Writes()
    writes.submit(fails, then=lambda: ran.append("then"))
    with pytest.raises(CheckpointWriteError, match="No space left"):
        writes.wait()
    assert ran == []
    writes.wait()  # raised once


def test_a_thens_exception_can_be_held_back_until_a_later_wait():
    class Stop(Exception):
        pass

    def stop():
        raise Stop("preempted")

    ran = []
    writes = Writes()
    writes.submit(lambda: None, then=stop)
    writes.wait(hold=True)  # the next checkpoint of the same end goes on
    writes.submit(lambda: ran.append("second write"))
    with pytest.raises(Stop, match="preempted"):
        writes.wait()
    assert ran == ["second write"]


# -- in a fit ----------------------------------------------------------------------------------------


def _data(n: int) -> TensorDataset:
    x = torch.randn(n, 3, generator=torch.Generator().manual_seed(0))
    return TensorDataset(x, (x.sum(dim=1) > 0).long())


def _trainer(run_dir, *callbacks, max_epochs=3) -> Trainer:
    torch.manual_seed(0)
    return Trainer(
        model=nn.Linear(3, 2),
        loss=F.cross_entropy,
        optimizer=functools.partial(torch.optim.SGD, lr=0.1, momentum=0.9),
        train_data=_data(12),
        val_data=_data(8),
        callbacks=callbacks,
        settings={"max_epochs": max_epochs, "batch_size": 4, "device": "cpu"},
        dataloader={"shuffle": False},
        run_dir=run_dir,
    )


def test_an_epochs_checkpoint_is_written_on_the_writer_thread_while_the_next_epoch_trains(tmp_path, monkeypatch):
    """The first write is held until the second epoch has taken a step: only a write off the training thread allows it."""
    stepped = threading.Event()
    writers = []
    save_atomic = snapshot.save_atomic

    def held(*args, **kwargs):
        writers.append(threading.current_thread().name)
        if len(writers) == 1:
            assert stepped.wait(10), "the training thread waited for the checkpoint"
        return save_atomic(*args, **kwargs)

    class Stepped(Callback):
        def on_batch_end(self, state):
            if state.epoch == 1:
                stepped.set()

    monkeypatch.setattr(snapshot, "save_atomic", held)
    trainer = _trainer(tmp_path, Checkpoint(), Stepped())
    trainer.fit()
    assert len(writers) == 3 and all(name.startswith("expresso-checkpoint") for name in writers)
    assert (
        load_checkpoint(tmp_path / "checkpoints" / "last.ckpt")["loop"]["epoch"] == 3
    )  # fit() returned with it on disk


def test_an_epoch_checkpoint_and_its_best_link_write_the_manifest_twice_before_and_after_the_rename(
    tmp_path, monkeypatch
):
    """Its entry before the rename, then every name (last, previous, best) in one write: not one write per name."""
    from expresso.engine.checkpoints import manifest

    writes = []
    atomic_write = manifest.atomic_write

    def counted(path, text, **kwargs):
        if path.name == "manifest.json":
            writes.append(sorted(json.loads(text)["files"]))
        return atomic_write(path, text, **kwargs)

    monkeypatch.setattr(manifest, "atomic_write", counted)
    _trainer(tmp_path, Checkpoint(), max_epochs=2).fit()  # val/loss falls each epoch
    assert writes == [
        [],  # epoch 1: its entry
        ["best.ckpt", "last.ckpt"],
        ["best.ckpt", "last.ckpt"],  # epoch 2: its entry
        ["best.ckpt", "last.ckpt", "previous.ckpt"],
    ]


def test_a_write_that_fails_on_the_writer_thread_fails_the_fit(tmp_path, monkeypatch):
    def full(*args, **kwargs):
        raise CheckpointWriteError("last.ckpt: cannot write (No space left on device); no checkpoint was written yet")

    monkeypatch.setattr(snapshot, "save_atomic", full)
    with pytest.raises(CheckpointWriteError, match="No space left on device"):
        _trainer(tmp_path, Checkpoint()).fit()


def test_ctrl_c_stops_the_fit_without_waiting_for_a_write_in_flight(tmp_path, monkeypatch):
    """A held write must not hold up Ctrl-C: the fit raises while the write is still running (a wait would finish it)."""
    release, finished = threading.Event(), threading.Event()
    save_atomic = snapshot.save_atomic

    def held(*args, **kwargs):
        release.wait(5)
        try:
            return save_atomic(*args, **kwargs)
        finally:
            finished.set()

    class CtrlC(Callback):
        def on_batch_end(self, state):
            if state.epoch == 1:
                raise KeyboardInterrupt

    monkeypatch.setattr(snapshot, "save_atomic", held)
    try:
        with pytest.raises(KeyboardInterrupt):
            _trainer(tmp_path, Checkpoint(), CtrlC()).fit()
        assert not finished.is_set()
    finally:
        release.set()  # the writer thread is the process's: free it for the next test
        finished.wait(10)
