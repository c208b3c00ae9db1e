"""MetricWatcher, the base of the callbacks that watch a metric: reading, comparing, resuming."""

from __future__ import annotations

import logging
import math

import pytest

from expresso.callbacks import Checkpoint, EarlyStopping, MetricWatcher
from expresso.engine import Callback
from expresso.engine.state import State


class Reads(MetricWatcher):
    """Writes down what ``read`` returned at every epoch's end."""

    order = 500  # after Feed, before the test's Recorder

    def __init__(self, monitor="val/loss", mode="min", min_delta=0.0):
        super().__init__(monitor, mode, min_delta)
        self.values: list[float | None] = []

    @property
    def state_key(self):
        return f"Reads[{self.monitor}]"

    def on_epoch_end(self, state):
        self.values.append(self.read(state))


class Feed(Callback):
    """Replaces the measured val/loss with a scripted value right after each validation."""

    def __init__(self, values):
        self.values = values

    def on_validation_end(self, state):
        state.metrics["val/loss"] = self.values[state.epoch]


class Carry(Callback):
    """Puts the last validation's values back into state.metrics at every epoch's start, as a stale value would stay."""

    def __init__(self):
        self.last = {}

    def on_epoch_start(self, state):
        state.metrics.update(self.last)

    def on_validation_end(self, state):
        self.last = {k: v for k, v in state.metrics.items() if k.startswith("val/")}


def test_a_val_metric_is_read_only_on_the_epochs_that_validated(make_trainer, recorder):
    # Validation after epochs 2 and 4 (counted from 1); epoch 3 still holds epoch 2's val/loss.
    reads = Reads()
    trainer = make_trainer(Feed([None, 0.7, None, 0.4]), Carry(), reads, recorder, max_epochs=4, val_every_n_epochs=2)
    trainer.fit()
    assert [metrics.get("val/loss") for metrics in recorder.epoch_metrics] == [None, 0.7, 0.7, 0.4]
    assert reads.values == [None, 0.7, None, 0.4]


def test_a_train_metric_is_read_at_every_epoch_end(make_trainer, recorder):
    reads = Reads(monitor="train/loss")
    make_trainer(reads, recorder, max_epochs=3).fit()
    assert reads.values == [metrics["train/loss"] for metrics in recorder.epoch_metrics]
    assert len(set(reads.values)) == 3


def test_an_unknown_name_fails_at_the_first_read_naming_the_metrics_and_the_closest(make_trainer):
    trainer = make_trainer(Reads(monitor="val/los"))
    with pytest.raises(KeyError) as caught:
        trainer.fit()
    assert caught.value.args[0] == (
        "Reads monitors 'val/los', which is not among the metrics ['train/loss', 'val/loss']; did you mean 'val/loss'?"
    )


def test_a_name_the_run_knows_but_this_epoch_did_not_measure_reads_as_nothing():
    # Another pipeline's metric, in a stage that does not run that pipeline: known, not a typo.
    reads = Reads(monitor="train/b/loss")
    state = State(graph=None, metrics={"train/a/loss": 0.5}, metric_names={"train/a/loss", "train/b/loss"})
    assert reads.read(state) is None
    with pytest.raises(KeyError, match="Reads monitors 'train/c/loss', which is not among the metrics"):
        Reads(monitor="train/c/loss").read(state)


def test_no_monitor_reads_nothing():
    assert Reads(monitor=None).read(State(graph=None, metrics={"val/loss": 1.0})) is None


@pytest.mark.parametrize(
    ("mode", "min_delta", "value", "than", "expected"),
    [
        ("min", 0.0, 0.5, None, True),  # anything beats nothing
        ("min", 0.0, 0.5, 0.6, True),
        ("min", 0.0, 0.6, 0.6, False),  # a tie is no improvement
        ("min", 0.0, 0.7, 0.6, False),
        ("max", 0.0, 0.7, 0.6, True),
        ("max", 0.0, 0.5, 0.6, False),
        ("min", 0.1, 0.55, 0.6, False),  # better, but not by more than min_delta
        ("min", 0.1, 0.45, 0.6, True),
        ("max", 0.1, 0.65, 0.6, False),
        ("max", 0.1, 0.75, 0.6, True),
        ("min", 0.0, math.nan, None, False),  # a NaN is never better, not even than nothing
        ("max", 0.0, math.nan, 0.6, False),
    ],
)
def test_better_compares_by_mode_and_min_delta(mode, min_delta, value, than, expected):
    assert Reads(mode=mode, min_delta=min_delta).better(value, than) is expected


def test_a_saved_state_counted_on_the_same_monitor_is_restored():
    watcher = Reads()
    watcher.load_state_dict({"best": 0.3, "best_epoch": 4, "monitor": "val/loss", "mode": "min"})
    assert (watcher.best, watcher.best_epoch) == (0.3, 4)


def test_a_state_saved_before_monitors_were_recorded_counts_as_the_same():
    watcher = Reads()
    watcher.load_state_dict({"best": 0.3, "best_epoch": 4})
    assert (watcher.best, watcher.best_epoch) == (0.3, 4)


@pytest.mark.parametrize(
    ("saved", "was"), [({"monitor": "val/acc", "mode": "min"}, "val/acc (min)"), ({"mode": "max"}, "val/loss (max)")]
)
def test_a_changed_monitor_or_mode_counts_afresh_and_says_so(caplog, saved, was):
    watcher = Reads()
    with caplog.at_level(logging.INFO, logger="expresso"):
        watcher.load_state_dict({"best": 0.3, "best_epoch": 4, **saved})
    assert (watcher.best, watcher.best_epoch) == (None, None)
    assert caplog.messages == [f"Reads: now watching val/loss (min), not {was} as before the resume: counting afresh"]


def test_a_fit_that_never_validated_warns_that_the_val_metric_was_never_read(make_trainer, caplog):
    with caplog.at_level(logging.WARNING, logger="expresso"):
        make_trainer(Reads(), Reads(monitor="train/loss"), val=False, max_epochs=2).fit()
    assert caplog.messages == ["Reads never read 'val/loss': no validation ran in this fit (no val_data?)"]


def test_a_resumed_fit_that_trained_no_epoch_has_nothing_to_warn_about(make_trainer, save_at, caplog):
    make_trainer(save_at(epoch=1), val=False, max_epochs=2).fit()  # the checkpoint of the last epoch
    resumed = make_trainer(Reads(), val=False, max_epochs=2)
    with caplog.at_level(logging.WARNING, logger="expresso"):
        resumed.fit(resume_from=save_at().path)
    assert resumed.state.epoch == 2
    assert caplog.messages == []


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"mode": "best"}, "Invalid value for argument `mode`. Received: mode='best'; expected 'min' or 'max'"),
        ({"min_delta": -1}, "Invalid value for argument `min_delta`. Received: min_delta=-1; expected a number >= 0"),
        (
            {"min_delta": "0.1"},
            "Invalid value for argument `min_delta`. Received: min_delta='0.1'; expected a number >= 0",
        ),
    ],
)
def test_invalid_arguments_are_refused_showing_the_value(arguments, message):
    with pytest.raises(ValueError) as caught:
        Reads(**arguments)
    assert str(caught.value) == message


def test_checkpoint_and_early_stopping_are_watchers_and_keep_their_state_keys():
    assert isinstance(Checkpoint(), MetricWatcher) and isinstance(EarlyStopping(), MetricWatcher)
    assert set(Checkpoint().state_dict()) == {"best", "best_epoch", "top", "monitor", "mode", "links"}
    assert set(EarlyStopping().state_dict()) == {"best", "best_epoch", "wait", "monitor", "mode"}
