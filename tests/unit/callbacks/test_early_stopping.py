import logging

import pytest
import torch

from expresso.callbacks import EarlyStopping
from expresso.engine import Callback


class Feed(Callback):
    """Replaces the measured val/loss with a scripted value per epoch, right after validation."""

    order = 0

    def __init__(self, values, key="val/loss"):
        self.values, self.key = values, key

    def on_validation_end(self, state):
        state.metrics[self.key] = self.values[state.epoch]


def test_stops_after_patience_checks_without_improvement(make_trainer, recorder, caplog):
    stopper = EarlyStopping(patience=3)
    trainer = make_trainer(Feed([1.0, 0.8, 0.9, 0.85, 0.95, 0.7, 0.6]), stopper, recorder, max_epochs=7)
    with caplog.at_level(logging.INFO, logger="expresso"):
        trainer.fit()
    assert recorder.epochs == [0, 1, 2, 3, 4]
    assert stopper.state_dict() == {
        "best": 0.8,
        "best_epoch": 2,
        "wait": 3,
        "monitor": "val/loss",
        "mode": "min",
    }  # epochs counted from 1
    assert [r.getMessage() for r in caplog.records if r.getMessage().startswith("EarlyStopping")] == [
        "EarlyStopping: val/loss did not improve by more than 0 in 3 check(s) (best 0.8 at epoch 2, patience 3); last 0.95; stopping after epoch 5"
    ]
    assert trainer.state.stops == {}  # the stage ended: its stop is spent


def test_an_improvement_smaller_than_min_delta_does_not_count(make_trainer, recorder):
    trainer = make_trainer(
        Feed([1.0, 0.95, 0.91, 0.5]), EarlyStopping(patience=2, min_delta=0.1), recorder, max_epochs=4
    )
    trainer.fit()
    assert recorder.epochs == [0, 1, 2]


def test_mode_max_stops_when_the_value_stops_rising(make_trainer, recorder):
    feed = Feed([0.5, 0.6, 0.6, 0.55, 0.9], key="val/acc")
    trainer = make_trainer(feed, EarlyStopping(monitor="val/acc", mode="max", patience=2), recorder, max_epochs=5)
    trainer.fit()
    assert recorder.epochs == [0, 1, 2, 3]


def test_patience_counts_validations_not_epochs_that_skipped_validation(make_trainer, recorder):
    # Validation runs after epochs 1, 3, 5 (val_every_n_epochs=2); the stale value in between is not re-counted.
    feed = Feed([None, 1.0, None, 1.1, None, 1.2, None, 0.1])
    trainer = make_trainer(feed, EarlyStopping(patience=2), recorder, max_epochs=8, val_every_n_epochs=2)
    trainer.fit()
    assert recorder.epochs == [0, 1, 2, 3, 4, 5]


def test_a_nan_is_never_an_improvement(make_trainer, recorder):
    trainer = make_trainer(Feed([1.0, float("nan"), 0.9]), EarlyStopping(patience=1), recorder, max_epochs=3)
    trainer.fit()
    assert recorder.epochs == [0, 1]


def test_a_misspelt_monitor_fails_at_the_first_check_naming_the_metrics(make_trainer, recorder):
    trainer = make_trainer(EarlyStopping(monitor="val/los"), recorder)
    with pytest.raises(KeyError) as caught:
        trainer.fit()
    assert caught.value.args[0] == (
        "EarlyStopping monitors 'val/los', which is not among the metrics ['train/loss', 'val/loss']; did you mean 'val/loss'?"
    )
    assert recorder.epochs == []  # raised in epoch 0's end, before the recorder (order 1000) saw it


def test_a_missing_train_metric_fails_at_the_first_epoch_end(make_trainer, recorder):
    trainer = make_trainer(EarlyStopping(monitor="train/acc"), recorder, val=False)
    with pytest.raises(KeyError) as caught:
        trainer.fit()
    assert caught.value.args[0].startswith(
        "EarlyStopping monitors 'train/acc', which is not among the metrics ['train/loss']"
    )
    assert recorder.epochs == []


def test_a_val_metric_in_a_fit_without_validation_warns_at_fit_end(make_trainer, recorder, caplog):
    trainer = make_trainer(EarlyStopping(patience=1), recorder, val=False, max_epochs=2)
    with caplog.at_level(logging.INFO, logger="expresso"):
        trainer.fit()
    assert recorder.epochs == [0, 1]
    assert [(r.levelname, r.getMessage()) for r in caplog.records] == [
        ("WARNING", "EarlyStopping never read 'val/loss': no validation ran in this fit (no val_data?)")
    ]


def test_a_resumed_run_stops_at_the_epoch_the_uninterrupted_run_stopped(make_trainer, recorder, save_at):
    values = [1.0, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.1]
    whole_stopper = EarlyStopping(patience=3)
    whole = make_trainer(Feed(values), whole_stopper, recorder, save_at(epoch=2), max_epochs=8)
    whole.fit()
    assert recorder.epochs == [0, 1, 2, 3, 4]

    resumed_recorder, resumed_stopper = type(recorder)(), EarlyStopping(patience=3)
    resumed = make_trainer(Feed(values), resumed_stopper, resumed_recorder, max_epochs=8)
    resumed.fit(resume_from=save_at().path)
    # Without the restored wait count (1 after epoch 2) it would run on to epoch 6.
    assert resumed_recorder.epochs == [3, 4]
    assert (
        resumed_stopper.state_dict()
        == whole_stopper.state_dict()
        == {"best": 0.5, "best_epoch": 2, "wait": 3, "monitor": "val/loss", "mode": "min"}
    )
    assert torch.equal(resumed.graph.models["model"].weight, whole.graph.models["model"].weight)


def test_resuming_from_the_epoch_that_stopped_the_run_trains_no_further_and_says_why(make_trainer, recorder, save_at):
    values = [1.0, 1.1, 1.2, 0.1]
    make_trainer(Feed(values), EarlyStopping(patience=2), save_at(epoch=2), max_epochs=4).fit()
    resumed = make_trainer(Feed(values), EarlyStopping(patience=2), recorder, max_epochs=4)
    resumed.load_checkpoint(save_at().path)
    assert resumed.nothing_left() == (
        "stopped",
        "EarlyStopping stopped it: val/loss did not improve by more than 0 in 2 check(s) (best 1 at epoch 1, patience 2)",
    )
    resumed.fit()
    assert recorder.epochs == []


@pytest.mark.parametrize(
    "stopper", [EarlyStopping(patience=3), None], ids=["larger patience", "early stopping removed"]
)
def test_a_run_early_stopping_ended_trains_on_when_resumed_with_a_larger_patience_or_without_it(
    make_trainer, recorder, save_at, stopper
):
    values = [1.0, 1.1, 1.2, 0.1, 0.2]
    make_trainer(Feed(values), EarlyStopping(patience=2), save_at(epoch=2), max_epochs=5).fit()
    resumed = make_trainer(*filter(None, [Feed(values), stopper, recorder]), max_epochs=5)
    resumed.load_checkpoint(save_at().path)
    assert resumed.nothing_left() is None
    resumed.fit()
    assert recorder.epochs == [3, 4]  # epoch 4 improved (0.1), so patience 3 does not stop after epoch 5 either


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"mode": "best"}, "Invalid value for argument `mode`. Received: mode='best'; expected 'min' or 'max'"),
        ({"patience": -1}, "Invalid value for argument `patience`. Received: patience=-1; expected an integer >= 0"),
        (
            {"min_delta": -0.1},
            "Invalid value for argument `min_delta`. Received: min_delta=-0.1; expected a number >= 0",
        ),
    ],
)
def test_invalid_arguments_are_refused_showing_the_value(arguments, message):
    with pytest.raises(ValueError) as caught:
        EarlyStopping(**arguments)
    assert str(caught.value) == message


def test_the_stop_message_follows_the_line_of_the_epoch_it_refers_to(make_trainer, caplog):
    from expresso.callbacks import Progress

    trainer = make_trainer(Feed([1.0, 1.1]), Progress(), EarlyStopping(patience=1), max_epochs=2)
    with caplog.at_level(logging.INFO, logger="expresso"):
        trainer.fit()
    assert [message.split("  ")[0].split(":")[0] for message in caplog.messages] == [
        "epoch 1/2",
        "epoch 2/2",
        "EarlyStopping",
    ]


def test_a_run_resumed_watching_another_metric_counts_afresh_and_says_so(make_trainer, recorder, save_at, caplog):
    make_trainer(
        Feed([1.0, 1.1, 1.2, 1.3]), EarlyStopping(patience=3), save_at(epoch=2), max_epochs=4
    ).fit()  # wait 2 on val/loss
    stopper = EarlyStopping(monitor="val/acc", mode="max", patience=3)
    resumed = make_trainer(Feed([0.1, 0.2, 0.3, 0.4], key="val/acc"), stopper, recorder, max_epochs=4)
    with caplog.at_level(logging.INFO, logger="expresso"):
        resumed.load_checkpoint(save_at().path)
    assert (
        "EarlyStopping: now watching val/acc (max), not val/loss (min) as before the resume: counting afresh"
        in caplog.messages
    )
    resumed.fit()
    assert stopper.state_dict() == {"best": 0.4, "best_epoch": 4, "wait": 0, "monitor": "val/acc", "mode": "max"}
