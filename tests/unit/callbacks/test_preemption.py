"""Preemption: a SIGTERM or SIGUSR1 sent to the process during a fit stops it at the next step boundary, checkpointed.

The signals are real (``os.kill`` of this process): the handler Preemption
installs receives them. Every test leaves the process's handlers as it found
them.
"""

from __future__ import annotations

import logging
import os
import signal

import pytest
import torch

from expresso.callbacks.preemption import EXIT_PREEMPTED, Preempted, Preemption
from expresso.commands.session import run_fit
from expresso.engine import Callback
from expresso.engine.checkpoints.io import load_checkpoint
from expresso.runs.record import RunRecord, read_record


class Send(Callback):
    """Sends this process ``signals`` once, when the step (or epoch) is the given one; subclasses pick the event."""

    def __init__(self, *signals: int, step: int | None = None, epoch: int | None = None):
        self.signals, self.step, self.epoch, self.sent = signals, step, epoch, False

    def send(self, state) -> None:
        due = (self.step is None or state.step == self.step) and (self.epoch is None or state.epoch == self.epoch)
        if due and not self.sent:
            self.sent = True
            for signum in self.signals:
                os.kill(os.getpid(), signum)


class SendAtBatchEnd(Send):
    def on_batch_end(self, state):
        self.send(state)


class SendAtValidationEnd(Send):
    def on_validation_end(self, state):
        self.send(state)


@pytest.fixture
def installed(tmp_path):
    """A Preemption writing tmp_path/last.ckpt, its handlers installed for the test, the process's restored after."""
    preemption = Preemption(tmp_path / "last.ckpt")
    preemption.install()
    try:
        yield preemption
    finally:
        preemption.uninstall()


def test_sigusr1_during_a_step_writes_the_checkpoint_at_its_end_then_raises_preempted(
    make_trainer, installed, tmp_path
):
    trainer = make_trainer(installed, SendAtBatchEnd(signal.SIGUSR1, step=6), max_epochs=3)
    with pytest.raises(Preempted) as caught:
        trainer.fit()
    assert (caught.value.signum, caught.value.checkpoint) == (signal.SIGUSR1, tmp_path / "last.ckpt")
    assert str(caught.value) == f"stopped by SIGUSR1; checkpoint {tmp_path / 'last.ckpt'}"
    assert caught.value.run_status == "interrupted"
    assert trainer.state.step == 6  # no step after the signal's
    loop = load_checkpoint(tmp_path / "last.ckpt")["loop"]
    assert (loop["epoch"], loop["batch_index"], loop["step"]) == (1, 2, 6)  # epoch 2, two of its four batches done

    # The checkpoint is a true resume point: going on from it ends where the uninterrupted fit ends.
    resumed = make_trainer(max_epochs=3)
    resumed.fit(resume_from=tmp_path / "last.ckpt")
    whole = make_trainer(max_epochs=3)
    whole.fit()
    assert resumed.state.step == whole.state.step == 12
    assert torch.equal(resumed.graph.models["model"].weight, whole.graph.models["model"].weight)


def test_a_signal_during_validation_stops_at_the_epochs_end_with_the_epoch_complete(
    make_trainer, installed, tmp_path, recorder
):
    trainer = make_trainer(installed, SendAtValidationEnd(signal.SIGTERM, epoch=0), recorder, max_epochs=3)
    with pytest.raises(Preempted) as caught:
        trainer.fit()
    assert caught.value.signum == signal.SIGTERM
    assert recorder.epochs == [0]  # the epoch's end ran; no second epoch began
    loop = load_checkpoint(tmp_path / "last.ckpt")["loop"]
    assert (loop["epoch"], loop["batch_index"], loop["step"]) == (1, 0, 4)  # a resume starts epoch 2


def test_a_second_signal_changes_nothing(make_trainer, installed):
    trainer = make_trainer(installed, SendAtBatchEnd(signal.SIGTERM, signal.SIGUSR1, step=2))
    with pytest.raises(Preempted) as caught:
        trainer.fit()
    assert (caught.value.signum, trainer.state.step) == (signal.SIGTERM, 2)


def test_without_a_signal_the_fit_runs_to_its_end_and_writes_nothing(make_trainer, installed, tmp_path):
    trainer = make_trainer(installed, max_epochs=2)
    trainer.fit()
    assert trainer.state.step == 8
    assert list(tmp_path.iterdir()) == []


def test_uninstall_gives_back_the_handlers_it_replaced(tmp_path):
    def mine(signum, frame):
        pass

    before = signal.signal(signal.SIGUSR1, mine)
    try:
        preemption = Preemption(tmp_path / "last.ckpt")
        preemption.install()
        assert signal.getsignal(signal.SIGUSR1) == preemption._handle
        preemption.uninstall()
        assert signal.getsignal(signal.SIGUSR1) is mine
    finally:
        signal.signal(signal.SIGUSR1, before)


def test_the_command_marks_the_run_interrupted_and_exits_75(make_trainer, tmp_path, monkeypatch, capsys):
    # run_fit (train and resume) installs the handlers, and leaves the expresso logger set for a CLI process.
    logger = logging.getLogger("expresso")
    monkeypatch.setattr(logger, "propagate", logger.propagate)
    monkeypatch.setattr(logger, "level", logger.level)
    previous = signal.getsignal(signal.SIGUSR1)
    checkpoint = tmp_path / "checkpoints" / "last.ckpt"
    checkpoint.parent.mkdir()
    preemption = Preemption(checkpoint)
    trainer = make_trainer(preemption, SendAtBatchEnd(signal.SIGUSR1, step=3), run_dir=tmp_path)
    record = RunRecord(tmp_path, {"status": "running"})
    assert run_fit(trainer, record, preemption) == EXIT_PREEMPTED == 75  # EX_TEMPFAIL: a scheduler requeues it
    saved = read_record(tmp_path / "run.json")
    assert (saved["status"], saved["interrupted_by"]) == ("interrupted", "SIGUSR1")
    assert load_checkpoint(checkpoint)["loop"]["step"] == 3
    assert (
        f"stopped by SIGUSR1; checkpoint {checkpoint}: checkpoint written at step 3; resume with: expresso resume {tmp_path}"
        in capsys.readouterr().err
    )
    assert signal.getsignal(signal.SIGUSR1) == previous
