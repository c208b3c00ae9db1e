"""The Checkpoint callback: last, best and top-k files, step checkpoints, contents, exact resume, unreadable files."""

from __future__ import annotations

import copy
import functools
import json
import random
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.data import TensorDataset

from expresso.callbacks import Checkpoint, EarlyStopping, History, LRScheduler
from expresso.engine import Callback, Trainer
from expresso.engine.checkpoints import manifest
from expresso.engine.checkpoints.errors import CheckpointError
from expresso.engine.checkpoints.io import load_checkpoint

KEYS = {
    "format",
    "version",
    "models",
    "optimizers",
    "grad_scaler",
    "callbacks",
    "stages",
    "rng",
    "loop",
    "train_metrics",
    "metrics",
    "config",
}


def data(n: int) -> TensorDataset:
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(n, 3, generator=generator)
    return TensorDataset(x, (x.sum(dim=1) > 0).long())


def trainer_for(
    run_dir: Path, *callbacks, max_epochs: int = 3, train: int = 12, model_seed: int = 0, config=None, **settings
) -> Trainer:
    """A tiny seeded fit: ``train`` samples in batches of 4, 8 validation samples, SGD with momentum."""
    torch.manual_seed(model_seed)
    return Trainer(
        model=nn.Linear(3, 2),
        loss=F.cross_entropy,
        optimizer=functools.partial(torch.optim.SGD, lr=0.1, momentum=0.9),
        train_data=data(train),
        val_data=data(8),
        callbacks=callbacks,
        settings={"max_epochs": max_epochs, "batch_size": 4, "device": "cpu", **settings},
        dataloader={"shuffle": False},
        run_dir=run_dir,
        config=config,
    )


def read(path: Path) -> dict:
    return torch.load(path, weights_only=True)


class Script(Callback):
    """Replaces the monitored value with a scripted one per epoch, before the checkpoint reads it."""

    order = -100

    def __init__(self, values, key="val/x"):
        self.values, self.key = values, key

    def on_epoch_end(self, state):
        state.metrics[self.key] = self.values[state.epoch]


class Peek(Callback):
    """Once each epoch's checkpoints are on disk, calls ``look(state)`` and keeps what it returns.

    The trainer hands an epoch's checkpoints to its writer thread after every
    EPOCH_END handler, so this waits for them (as a callback reading one
    must) at the next epoch's start and at the fit's end: nothing trains in
    between, the weights are those the files were written from.
    """

    def __init__(self, look):
        self.look, self.seen = look, []

    def on_epoch_start(self, state):
        if state.epoch > 0:
            state.wait_for_checkpoints()
            self.seen.append(self.look(state))

    def on_fit_end(self, state):
        state.wait_for_checkpoints()
        self.seen.append(self.look(state))


def loop(epoch: int, batch_index: int, step: int, stage_epoch: int | None = None, stopped: bool = False) -> dict:
    """A checkpoint's loop position (stage 0, no stop)."""
    stage_epoch = epoch if stage_epoch is None else stage_epoch
    return {
        "epoch": epoch,
        "batch_index": batch_index,
        "step": step,
        "stage": 0,
        "stage_epoch": stage_epoch,
        "stage_stopped": stopped,
        "stops": {},
        "stop_fit": False,
    }


ALWAYS = {"last.ckpt", "previous.ckpt", "manifest.json", "manifest.copy.json"}  # resume point, fallback, records


def files(folder: Path) -> set[str]:
    return {path.name for path in folder.iterdir()}


# -- which files ---------------------------------------------------------------------


def test_last_ckpt_is_written_at_every_epoch_end(tmp_path):
    folder = tmp_path / "checkpoints"

    def look(state):
        payload = read(folder / "last.ckpt")
        return payload["loop"], torch.equal(payload["models"]["model"]["weight"], state.models["model"].weight)

    peek = Peek(look)
    trainer_for(tmp_path, Checkpoint(), peek).fit()
    assert peek.seen == [(loop(1, 0, 3), True), (loop(2, 0, 6), True), (loop(3, 0, 9), True)]
    assert files(folder) == ALWAYS | {"best.ckpt"}


@pytest.mark.parametrize(
    "mode, expected",
    [("min", [3.0, 1.0, 1.0, 0.5, 0.5]), ("max", [3.0, 3.0, 3.0, 3.0, 4.0])],
)
def test_best_ckpt_holds_the_best_monitored_value_so_far(tmp_path, mode, expected):
    folder = tmp_path / "checkpoints"
    checkpoint = Checkpoint(monitor="val/x", mode=mode)
    peek = Peek(lambda state: read(folder / "best.ckpt")["metrics"]["val/x"])
    trainer_for(tmp_path, Script([3.0, 1.0, 2.0, 0.5, 4.0]), checkpoint, peek, max_epochs=5).fit()
    assert peek.seen == expected
    best_epoch = {"min": 4, "max": 5}[mode]  # counted from 1
    assert (checkpoint.best, checkpoint.best_epoch) == (expected[-1], best_epoch)
    assert read(folder / "best.ckpt")["loop"] == loop(best_epoch, 0, 3 * best_epoch)
    assert files(folder) == ALWAYS | {"best.ckpt"}


def test_save_top_k_keeps_exactly_the_k_best_epochs_and_deletes_the_others(tmp_path):
    folder = tmp_path / "checkpoints"
    peek = Peek(lambda state: sorted(files(folder) - ALWAYS - {"best.ckpt"}))
    checkpoint = Checkpoint(monitor="val/x", save_top_k=3)
    trainer_for(tmp_path, Script([5.0, 3.0, 4.0, 1.0, 2.0, 6.0]), checkpoint, peek, max_epochs=6).fit()

    assert peek.seen == [  # epochs counted from 1 in the file names
        ["epoch=1-step=3.ckpt"],
        ["epoch=1-step=3.ckpt", "epoch=2-step=6.ckpt"],
        ["epoch=1-step=3.ckpt", "epoch=2-step=6.ckpt", "epoch=3-step=9.ckpt"],
        ["epoch=2-step=6.ckpt", "epoch=3-step=9.ckpt", "epoch=4-step=12.ckpt"],
        ["epoch=2-step=6.ckpt", "epoch=4-step=12.ckpt", "epoch=5-step=15.ckpt"],
        ["epoch=2-step=6.ckpt", "epoch=4-step=12.ckpt", "epoch=5-step=15.ckpt"],
    ]
    assert checkpoint.top == [
        (1.0, "epoch=4-step=12.ckpt"),
        (2.0, "epoch=5-step=15.ckpt"),
        (3.0, "epoch=2-step=6.ckpt"),
    ]
    assert {name: read(folder / name)["metrics"]["val/x"] for _, name in checkpoint.top} == {
        "epoch=4-step=12.ckpt": 1.0,
        "epoch=5-step=15.ckpt": 2.0,
        "epoch=2-step=6.ckpt": 3.0,
    }
    assert read(folder / "best.ckpt")["metrics"]["val/x"] == 1.0


def test_epochs_that_did_not_validate_never_enter_the_top_k(tmp_path):
    folder = tmp_path / "checkpoints"
    trainer_for(tmp_path, Checkpoint(save_top_k=3), max_epochs=4, val_every_n_epochs=2).fit()
    assert files(folder) == ALWAYS | {"best.ckpt", "epoch=2-step=6.ckpt", "epoch=4-step=12.ckpt"}


def test_save_top_k_zero_writes_only_last_ckpt(tmp_path):
    trainer_for(tmp_path, Checkpoint(save_top_k=0)).fit()
    assert files(tmp_path / "checkpoints") == ALWAYS


def test_every_n_steps_writes_last_ckpt_at_those_steps(tmp_path):
    folder = tmp_path / "checkpoints"

    class BeforeEachBatch(Callback):
        """What last.ckpt holds when a batch starts: the previous step's checkpoint is on disk by then."""

        def __init__(self):
            self.seen = []

        def on_batch_start(self, state):
            state.wait_for_checkpoints()
            last = folder / "last.ckpt"
            payload = read(last) if last.exists() else None
            self.seen.append(
                (state.step, payload and payload["loop"], payload and payload["train_metrics"] is not None)
            )

    peek = BeforeEachBatch()
    trainer_for(tmp_path, Checkpoint(every_n_steps=2), peek, max_epochs=2).fit()
    assert peek.seen == [
        (0, None, None),
        (1, None, None),
        (2, loop(0, 2, 2), True),  # mid-epoch: the running metric sums are in it
        (3, loop(1, 0, 3), False),  # the first epoch's end
        (4, loop(1, 1, 4), True),
        (5, loop(1, 1, 4), True),
    ]
    final = read(folder / "last.ckpt")
    assert final["loop"] == loop(2, 0, 6) and final["train_metrics"] is None


def test_no_temporary_files_are_left_in_the_folder(tmp_path):
    trainer_for(tmp_path, Script([3.0, 1.0, 2.0]), Checkpoint(monitor="val/x", save_top_k=2, every_n_steps=1)).fit()
    assert files(tmp_path / "checkpoints") == ALWAYS | {"best.ckpt", "epoch=2-step=6.ckpt", "epoch=3-step=9.ckpt"}


def test_a_misspelt_monitor_fails_at_the_first_epoch_end_naming_the_metrics(tmp_path):
    with pytest.raises(KeyError) as caught:
        trainer_for(tmp_path, Checkpoint(monitor="val/los")).fit()
    assert caught.value.args[0] == (
        "Checkpoint monitors 'val/los', which is not among the metrics ['train/loss', 'val/loss']; did you mean 'val/loss'?"
    )


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"mode": "best"}, "Invalid value for argument `mode`. Received: mode='best'; expected 'min' or 'max'"),
        ({"save_top_k": -1}, "Invalid value for argument `save_top_k`. Received: save_top_k=-1; expected >= 0"),
        ({"every_n_steps": 0}, "Invalid value for argument `every_n_steps`. Received: every_n_steps=0; expected >= 1"),
    ],
)
def test_invalid_arguments_are_refused_showing_the_value(kwargs, message):
    with pytest.raises(ValueError) as caught:
        Checkpoint(**kwargs)
    assert str(caught.value) == message


def test_without_a_folder_the_fit_fails_before_training():
    with pytest.raises(ValueError, match=r"Checkpoint needs `dirpath` or a run folder \(state.run_dir\)"):
        trainer_for(None, Checkpoint()).fit()


# -- what a checkpoint holds ----------------------------------------------------------


def same_tensors(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_a_checkpoint_loads_with_weights_only_and_holds_everything_a_resume_needs(tmp_path):
    folder = tmp_path / "checkpoints"
    config = {"name": "tiny", "trainer": {"max_epochs": 2}}

    def capture(state):
        """The first epoch's last.ckpt, beside the live state it was written from (nothing ran in between)."""
        return {
            "payload": torch.load(folder / "last.ckpt", weights_only=True),
            "model": {k: v.clone() for k, v in state.models["model"].state_dict().items()},
            "optimizer": copy.deepcopy(state.optimizers["optimizer"].state_dict()),
            "rng": (random.getstate(), np.random.get_state()[1].copy(), torch.get_rng_state()),
            "metrics": dict(state.metrics),
        }

    peek = Peek(capture)
    trainer_for(tmp_path, History(log_every_n_steps=2), Checkpoint(), peek, max_epochs=1, config=config).fit()
    first = peek.seen[0]
    payload = first["payload"]

    assert set(payload) == KEYS
    assert (payload["format"], payload["version"]) == ("expresso-checkpoint", 1)
    assert list(payload["models"]) == ["model"] and same_tensors(payload["models"]["model"], first["model"])
    optimizer = payload["optimizers"]["optimizer"]
    assert list(payload["optimizers"]) == ["optimizer"]
    assert optimizer["param_groups"] == first["optimizer"]["param_groups"]
    assert optimizer["state"].keys() == first["optimizer"]["state"].keys() == {0, 1}
    assert all(same_tensors(optimizer["state"][i], first["optimizer"]["state"][i]) for i in (0, 1))  # momentum buffers

    python, numpy, torch_state = first["rng"]
    rng = payload["rng"]
    assert (rng["python"][0], tuple(rng["python"][1]), rng["python"][2]) == python
    assert np.array_equal(rng["numpy"]["keys"].numpy().astype(np.uint32), numpy)
    assert torch.equal(rng["torch"], torch_state)

    assert payload["loop"] == loop(1, 0, 3)
    assert payload["stages"] == [None]  # the one stage has no stop condition of its own
    assert payload["train_metrics"] is None  # an epoch-end checkpoint: the next epoch starts afresh
    assert payload["metrics"] == first["metrics"] and sorted(payload["metrics"]) == ["train/loss", "val/loss"]
    assert payload["config"] == config
    assert sorted(payload["callbacks"]) == ["Checkpoint", "History", "Peek"]
    columns = ["epoch", "step", "train/batch_loss", "train/loss", "val/loss"]
    history = payload["callbacks"]["History"]
    assert (history["columns"], history["rows_written"]) == (columns, 2)
    # The rows themselves, so a resume rebuilds a damaged metrics.csv: a step row, then the epoch row.
    assert [row[:2] for row in history["rows"]] == [[1, 2], [1, 3]]
    assert float(history["rows"][1][4]) == pytest.approx(first["metrics"]["val/loss"], rel=1e-6)
    assert payload["callbacks"]["Checkpoint"] == {
        "best": first["metrics"]["val/loss"],
        "best_epoch": 1,
        "top": [],
        "monitor": "val/loss",
        "mode": "min",
        "links": {"best": True, "kept": None, "dropped": []},  # what must follow this file, kept for a resume
    }


# -- resume ---------------------------------------------------------------------------


class SaveAt(Callback):
    """Copies the state at one optimizer step into ``path`` (a mid-epoch checkpoint)."""

    order = 150

    def __init__(self, path: Path, step: int):
        self.path, self.step = path, step

    def on_batch_end(self, state):
        if state.step == self.step:
            state.save_checkpoint(self.path)


def resumable_trainer(
    run_dir: Path, resume_file: Path, save_step: int, model_seed: int = 0, train: int = 16
) -> Trainer:
    """Dropout, shuffling, Adam, a per-step StepLR, early stopping, checkpoints and history: all must resume exactly."""
    run_dir.mkdir(parents=True, exist_ok=True)  # a run folder exists before its callbacks write there
    torch.manual_seed(model_seed)
    model = nn.Sequential(nn.Linear(3, 16), nn.ReLU(), nn.Dropout(0.3), nn.Linear(16, 2))
    return Trainer(
        model=model,
        loss=F.cross_entropy,
        optimizer=functools.partial(torch.optim.Adam, lr=0.05),
        train_data=data(train),
        val_data=data(8),
        callbacks=[
            History(log_every_n_steps=3),
            LRScheduler(functools.partial(torch.optim.lr_scheduler.StepLR, step_size=2, gamma=0.7), interval="step"),
            EarlyStopping(patience=2),
            Checkpoint(every_n_steps=5),
            SaveAt(resume_file, save_step),
        ],
        settings={"max_epochs": 4, "batch_size": 4, "seed": 11, "device": "cpu"},
        dataloader={"shuffle": True},
        run_dir=run_dir,
    )


def snapshot(trainer: Trainer) -> dict:
    optimizer = trainer.graph.optimizers["optimizer"].optimizer.state_dict()
    return {
        "weights": {k: v.clone() for k, v in trainer.graph.models["model"].state_dict().items()},
        "optimizer_state": {i: {k: v.clone() for k, v in s.items()} for i, s in optimizer["state"].items()},
        "param_groups": optimizer["param_groups"],
        "callbacks": trainer.callbacks.state_dict(),
        "metrics": dict(trainer.state.metrics),
        "position": (trainer.state.epoch, trainer.state.step),
    }


def assert_same_run(a: dict, b: dict) -> None:
    assert a["weights"].keys() == b["weights"].keys()
    assert all(torch.equal(a["weights"][k], b["weights"][k]) for k in a["weights"])
    assert a["optimizer_state"].keys() == b["optimizer_state"].keys()
    for i in a["optimizer_state"]:
        assert all(torch.equal(a["optimizer_state"][i][k], b["optimizer_state"][i][k]) for k in a["optimizer_state"][i])
    assert a["param_groups"] == b["param_groups"]
    assert a["callbacks"] == b["callbacks"]
    assert a["metrics"] == b["metrics"]
    assert a["position"] == b["position"]


def test_a_run_resumed_mid_epoch_ends_exactly_where_the_uninterrupted_run_ends(tmp_path):
    resume_file = tmp_path / "resume.ckpt"
    whole = resumable_trainer(tmp_path / "whole", resume_file, save_step=6)  # epoch 1, after 2 of its 4 batches
    whole.fit()
    assert read(resume_file)["loop"] == loop(1, 2, 6)
    assert whole.state.step > 6

    resumed = resumable_trainer(tmp_path / "resumed", tmp_path / "unused.ckpt", save_step=6, model_seed=1)
    assert not torch.equal(resumed.graph.models["model"][0].weight, whole.graph.models["model"][0].weight)
    torch.manual_seed(12345)  # the resumed process's RNG starts elsewhere; the checkpoint restores it
    resumed.fit(resume_from=resume_file)

    assert_same_run(snapshot(resumed), snapshot(whole))


def test_a_run_resumed_from_the_last_partial_batch_of_an_epoch_ends_like_the_uninterrupted_run(tmp_path):
    resume_file = tmp_path / "resume.ckpt"
    whole = resumable_trainer(
        tmp_path / "whole", resume_file, save_step=3, train=10
    )  # batches 4, 4, 2: step 3 ends epoch 0
    whole.fit()
    assert read(resume_file)["loop"] == loop(0, 3, 3)

    resumed = resumable_trainer(tmp_path / "resumed", tmp_path / "unused.ckpt", save_step=3, train=10, model_seed=1)
    resumed.fit(resume_from=resume_file)
    assert_same_run(snapshot(resumed), snapshot(whole))


# -- unreadable checkpoints -----------------------------------------------------------


def test_a_truncated_checkpoint_raises_checkpoint_error_naming_the_file(tmp_path):
    trainer_for(tmp_path, Checkpoint(), max_epochs=1).fit()
    whole = (tmp_path / "checkpoints" / "last.ckpt").read_bytes()
    broken = tmp_path / "broken.ckpt"
    broken.write_bytes(whole[: len(whole) // 2])

    with pytest.raises(CheckpointError) as caught:
        load_checkpoint(broken)
    assert str(caught.value).startswith(f"{broken}: not a readable checkpoint (")

    fresh = trainer_for(tmp_path / "again", Checkpoint())
    with pytest.raises(CheckpointError, match="broken.ckpt: not a readable checkpoint"):
        fresh.fit(resume_from=broken)


def test_a_handler_that_raises_at_epoch_end_leaves_the_previous_checkpoint_as_the_resume_point(tmp_path):
    class FailsInTheSecondEpoch(Callback):
        def on_epoch_end(self, state):  # before the history's row and the Checkpoint's file (EPOCH_CHECKPOINT)
            if state.epoch == 1:
                raise RuntimeError("a user callback's bug")

    with pytest.raises(RuntimeError, match="a user callback's bug"):
        trainer_for(tmp_path, History(), Checkpoint(), FailsInTheSecondEpoch()).fit()
    payload = read(tmp_path / "checkpoints" / "last.ckpt")
    assert payload["loop"] == loop(1, 0, 3)  # the first epoch's: the second's end never completed
    assert payload["callbacks"]["History"]["rows_written"] == 1
    assert [line.split(",")[0] for line in (tmp_path / "metrics.csv").read_text().splitlines()] == ["epoch", "1"]


def test_a_handler_that_raises_after_the_checkpoint_was_asked_for_cancels_it(tmp_path):
    class FailsInTheSecondEpoch(Callback):
        order = 200  # after the Checkpoint callback asked for its file at the same event

        def on_epoch_checkpoint(self, state):
            if state.epoch == 1:
                raise RuntimeError("a user callback's bug")

    with pytest.raises(RuntimeError, match="a user callback's bug"):
        trainer_for(tmp_path, History(), Checkpoint(), FailsInTheSecondEpoch()).fit()
    payload = read(tmp_path / "checkpoints" / "last.ckpt")
    assert payload["loop"] == loop(1, 0, 3)  # the first epoch's: the second's was asked for, then cancelled
    assert payload["callbacks"]["History"]["rows_written"] == 1  # a resume cuts metrics.csv back to one row


class DiesBeforeLinking(Checkpoint):
    """Dies (as a SIGKILL would) once epoch ``epoch``'s last.ckpt is on disk, before best.ckpt and the top-k follow it."""

    state_key = "Checkpoint"  # its state is the Checkpoint's, which the resumed run reads

    def __init__(self, epoch: int, **kwargs):
        super().__init__(**kwargs)
        self.epoch = epoch

    def _link(self, source, entry=None, links=None):
        if (links or self._links) and self.read_epoch == self.epoch:
            raise KeyboardInterrupt
        super()._link(source, entry, links)

    def on_epoch_checkpoint(self, state):
        state.wait_for_checkpoints()  # the previous epoch's links are made (on the writer thread) before read_epoch moves
        self.read_epoch = state.epoch + 1
        super().on_epoch_checkpoint(state)


def test_a_resume_from_a_checkpoint_whose_links_were_never_made_makes_them_first(tmp_path):
    """Killed between last.ckpt and best.ckpt (item 1 of issue 14): best.ckpt and the top-k must not stay stale."""
    values = [5.0, 3.0, 4.0, 1.0]
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    trainer_for(whole, Script(values), Checkpoint(monitor="val/x", save_top_k=2), max_epochs=4).fit()
    with pytest.raises(KeyboardInterrupt):
        trainer_for(killed, Script(values), DiesBeforeLinking(4, monitor="val/x", save_top_k=2), max_epochs=4).fit()
    folder = killed / "checkpoints"
    assert read(folder / "last.ckpt")["loop"]["epoch"] == 4
    assert read(folder / "best.ckpt")["metrics"]["val/x"] == 3.0  # stale: epoch 2's
    assert "epoch=4-step=12.ckpt" not in files(folder)
    for record in folder.glob("manifest*.json"):  # killed before its name was recorded: the name holds the old entry
        data = json.loads(record.read_text())
        data["files"]["last.ckpt"] = data["files"]["previous.ckpt"]
        record.write_text(json.dumps(data))

    resumed = trainer_for(killed, Script(values), Checkpoint(monitor="val/x", save_top_k=2), max_epochs=4)
    resumed.load_checkpoint(folder / "last.ckpt")
    resumed.fit()  # nothing left to train: the links are made when the fit starts
    assert files(folder) == files(whole / "checkpoints")
    for name in (name for name in files(folder) if name.endswith(".ckpt")):
        a, b = read(whole / "checkpoints" / name), read(folder / name)
        assert (a["loop"], a["metrics"]) == (b["loop"], b["metrics"]), name
    assert read(folder / "best.ckpt")["metrics"]["val/x"] == 1.0
    for record in folder.glob("manifest*.json"):  # recorded with its own bytes, not the old entry of last.ckpt's name
        recorded = json.loads(record.read_text())["files"]
        assert recorded["best.ckpt"]["sha256"] == manifest.sha256_of(folder / "best.ckpt"), record.name
        assert recorded["epoch=4-step=12.ckpt"]["sha256"] == manifest.sha256_of(folder / "best.ckpt"), record.name
