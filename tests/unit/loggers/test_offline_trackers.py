"""The comet and wandb loggers through the Python API, offline: a fit that raised ends failed or interrupted in the
tracker's own record (Comet's Other value ``status``; W&B's exit code and summary), never as a run still going; the
run's ``random`` stream is the one it would have without the tracker."""

import functools
import json
import random
import zipfile

import pytest
import torch
from torch.utils.data import TensorDataset

from expresso.callbacks.preemption import Preempted
from expresso.engine import Callback, Trainer
from expresso.loggers import CometLogger, Logger, WandbLogger

pytestmark = pytest.mark.slow  # make test-slow: it needs the comet and wandb extras, which it installs

ENDINGS = [(None, "completed"), (RuntimeError("boom"), "failed"), (Preempted(2, "last.ckpt"), "interrupted")]


class Raises(Callback):
    def __init__(self, error):
        self.error = error

    def on_epoch_end(self, state):
        raise self.error


class DrawsAtStart(Callback):
    """Records a draw from Python's ``random`` after every FIT_START handler (the trackers start there)."""

    order = 100_000

    def on_fit_start(self, state):
        self.draw = random.random()


def fit(logger, run_dir, error):
    x = torch.randn(8, 3, generator=torch.Generator().manual_seed(0))
    draws = DrawsAtStart()
    callbacks = [logger, draws] if error is None else [logger, draws, Raises(error)]
    trainer = Trainer(
        model=torch.nn.Linear(3, 2),
        loss=torch.nn.functional.cross_entropy,
        optimizer=functools.partial(torch.optim.SGD, lr=0.1),
        train_data=TensorDataset(x, (x.sum(1) > 0).long()),
        callbacks=callbacks,
        settings={"max_epochs": 1, "batch_size": 4},
        config={"name": "ends", "optimizer": {"lr": 0.1}},
        run_dir=run_dir,
    )
    if error is None:
        trainer.fit()
    else:
        with pytest.raises(type(error)):
            trainer.fit()
    return draws.draw


def untouched_draw(tmp_path, error):
    """The draw of the same fit with a logger that does nothing."""
    return fit(Logger(), tmp_path / "ends" / "plain", error)


@pytest.mark.parametrize(("error", "status"), ENDINGS)
def test_comet_offline_records_how_the_fit_ended(tmp_path, monkeypatch, error, status):
    monkeypatch.delenv("COMET_API_KEY", raising=False)
    logger = CometLogger()
    assert fit(logger, tmp_path / "ends" / "run", error) == untouched_draw(tmp_path, error)
    [archive] = (tmp_path / "ends" / "run" / "comet").iterdir()
    assert archive.name.startswith(f"{logger.experiment_key}-") and archive.suffix == ".zip"
    with zipfile.ZipFile(archive) as opened:
        messages = [json.loads(line) for line in opened.read("messages.json").decode().splitlines()]
    others = {m["payload"]["key"]: m["payload"]["value"] for m in messages if m["type"] == "log_other"}
    assert others["status"] == status
    params = {
        m["payload"]["param"]["paramName"]: m["payload"]["param"]["paramValue"]
        for m in messages
        if m["type"] == "parameter_msg"
    }
    assert {key: params[key] for key in ("name", "optimizer.lr")} == {"name": "ends", "optimizer.lr": 0.1}


@pytest.mark.parametrize(("error", "status"), ENDINGS)
def test_wandb_offline_records_how_the_fit_ended(tmp_path, monkeypatch, error, status):
    from wandb.proto.wandb_internal_pb2 import Record

    from expresso.loggers.wandb import records

    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    logger = WandbLogger()
    assert fit(logger, tmp_path / "ends" / "run", error) == untouched_draw(tmp_path, error)
    [folder] = (tmp_path / "ends" / "run" / "wandb").glob(f"offline-run-*-{logger.run_id}")
    parsed = []
    for payload in records(folder / f"run-{logger.run_id}.wandb"):
        parsed.append(Record())
        parsed[-1].ParseFromString(payload)
    exits = [record.exit.exit_code for record in parsed if record.WhichOneof("record_type") == "exit"]
    assert exits == [{"completed": 0, "failed": 1, "interrupted": 130}[status]]
    summary = {
        item.key: json.loads(item.value_json)
        for record in parsed
        if record.WhichOneof("record_type") == "summary"
        for item in record.summary.update
        if item.key
    }
    assert summary["status"] == status
