"""Events and control flow: the documented order, callback order and phases, skip/stop exceptions, limits."""

from __future__ import annotations

import functools
import itertools

import pytest
import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.data import TensorDataset

from expresso.engine import Callback, Event, SkipBatch, StopEpoch, StopTraining, Trainer
from expresso.engine.callback import Dispatcher

E = Event


def tiny_data(n: int = 12) -> TensorDataset:
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(n, 3, generator=generator)
    return TensorDataset(x, (x.sum(dim=1) > 0).long())


def make_trainer(*callbacks, max_epochs=2, data=None, val=True, loader=None, **settings) -> Trainer:
    """12 training samples in batches of 4 (3 batches), 8 validation samples (2 batches), no shuffling."""
    torch.manual_seed(0)
    return Trainer(
        model=nn.Linear(3, 2),
        loss=F.cross_entropy,
        optimizer=functools.partial(torch.optim.SGD, lr=0.1),
        train_data=data if data is not None else tiny_data(),
        val_data=tiny_data(8) if val else None,
        test_data=tiny_data(4),
        callbacks=callbacks,
        settings={"max_epochs": max_epochs, "batch_size": 4, "device": "cpu", **settings},
        dataloader={"shuffle": False, **(loader or {})},
    )


def weights(trainer: Trainer) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in trainer.graph.models["model"].state_dict().items()}


def same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


class EventLog(Callback):
    """Writes down (event, phase) for every event: it overrides every on_<event> method."""

    def __init__(self):
        self.seen: list[tuple[Event, str]] = []

    def of(self, event: Event) -> list[tuple[Event, str]]:
        return [item for item in self.seen if item[0] is event]


for _event in Event:
    setattr(EventLog, f"on_{_event.value}", lambda self, state, _e=_event: self.seen.append((_e, state.phase)))


def raiser(exception):
    def action(state):
        raise exception

    return action


_classes = itertools.count()


def at(event: Event, when, action, order: int = 0) -> Callback:
    """A callback of a new class overriding exactly ``on_<event>``: calls ``action(state)`` when ``when(state)``."""

    def handler(self, state):
        if when(state):
            action(state)

    cls = type(f"At{next(_classes)}_{event.value}", (Callback,), {"order": order, f"on_{event.value}": handler})
    return cls()


# -- the documented order --------------------------------------------------------

TRAIN_BATCH = [E.BATCH_START, E.AFTER_FORWARD, E.AFTER_BACKWARD, E.BEFORE_OPTIMIZER_STEP, E.BATCH_END]
VALIDATION = [E.VALIDATION_START, E.EVAL_BATCH_END, E.EVAL_BATCH_END, E.VALIDATION_END]


def test_a_fit_fires_the_events_in_the_documented_order():
    log = EventLog()
    make_trainer(log, max_epochs=2, validate_before_fit=True).fit()

    epoch = [E.EPOCH_START, *TRAIN_BATCH * 3, *VALIDATION, E.EPOCH_END]
    assert log.seen == [
        (event, "fit") for event in [E.FIT_START, *VALIDATION, E.STAGE_START, *epoch, *epoch, E.STAGE_END, E.FIT_END]
    ]


def test_standalone_evaluation_fires_eval_events_in_its_own_phase():
    log = EventLog()
    trainer = make_trainer(log)
    trainer.validate()
    trainer.test()
    trainer.predict(tiny_data(4))
    expected = [
        (E.EVAL_START, "validate"),
        (E.EVAL_BATCH_END, "validate"),
        (E.EVAL_BATCH_END, "validate"),
        (E.EVAL_END, "validate"),
    ]
    expected += [(E.EVAL_START, "test"), (E.EVAL_BATCH_END, "test"), (E.EVAL_END, "test")]
    expected += [(E.EVAL_START, "predict"), (E.EVAL_BATCH_END, "predict"), (E.EVAL_END, "predict")]
    assert log.seen == expected


def test_saving_and_loading_a_checkpoint_fire_their_events(tmp_path):
    log = EventLog()
    trainer = make_trainer(log)
    trainer.save_checkpoint(tmp_path / "a.ckpt")
    trainer.load_checkpoint(tmp_path / "a.ckpt")
    assert log.seen == [(E.CHECKPOINT_SAVE, "fit"), (E.CHECKPOINT_LOAD, "fit")]


def test_an_error_fires_exception_with_the_error_in_state_then_propagates():
    log = EventLog()
    seen = {}
    error = RuntimeError("boom")
    failing = at(E.BATCH_END, lambda s: s.step == 2, raiser(error))
    keeper = at(E.EXCEPTION, lambda s: True, lambda s: seen.setdefault("exception", s.extra["exception"]))
    with pytest.raises(RuntimeError, match="boom"):
        make_trainer(log, failing, keeper).fit()
    assert seen == {"exception": error}
    assert [event for event, _ in log.seen[-2:]] == [E.BATCH_END, E.EXCEPTION]
    assert log.of(E.FIT_END) == []


# -- callback order, phases, dispatch -------------------------------------------------


def test_callbacks_run_sorted_by_order_and_ties_keep_the_given_order():
    calls = []

    def named(name: str, order: int) -> Callback:
        return at(E.EPOCH_START, lambda s: True, lambda s: calls.append(name), order)

    callbacks = [named("a", 5), named("b", -1), named("c", 5), named("d", 0), named("e", -1)]
    make_trainer(*callbacks, max_epochs=1).fit()
    assert calls == ["b", "e", "d", "a", "c"]


def test_a_callback_limited_to_the_test_phase_sees_only_test_events():
    log = EventLog()
    log.phases = ("test",)
    trainer = make_trainer(log, validate_before_fit=True)
    trainer.fit()
    trainer.validate()
    assert log.seen == []
    trainer.test()
    assert log.seen == [(E.EVAL_START, "test"), (E.EVAL_BATCH_END, "test"), (E.EVAL_END, "test")]


def test_the_dispatcher_lists_only_callbacks_that_override_the_event():
    class OnlyEpochEnd(Callback):
        def __init__(self):
            self.calls = 0

        def on_epoch_end(self, state):
            self.calls += 1

    only = OnlyEpochEnd()
    dispatcher = Dispatcher([only])
    assert dispatcher.handlers(E.BATCH_START, "fit") == []
    assert [event for event in Event if dispatcher.handlers(event, "fit")] == [E.EPOCH_END]
    assert dispatcher.handlers(E.EPOCH_END, "fit") == [only.on_epoch_end]
    make_trainer(only, max_epochs=2).fit()
    assert only.calls == 2


def test_a_callback_whose_listens_declines_an_event_is_not_called_for_it():
    class Quiet(Callback):
        def __init__(self):
            self.epoch_ends = 0

        def listens(self, event):
            return event is not E.BATCH_END

        def on_batch_end(self, state):
            raise AssertionError("called for an event it declined")

        def on_epoch_end(self, state):
            self.epoch_ends += 1

    quiet = Quiet()
    make_trainer(quiet, max_epochs=2).fit()
    assert quiet.epoch_ends == 2


def test_two_callbacks_with_the_same_checkpoint_key_are_refused():
    with pytest.raises(ValueError, match=r"two callbacks share the checkpoint key\(s\) \['EventLog'\]"):
        Dispatcher([EventLog(), EventLog()])


# -- control flow ----------------------------------------------------------------


def test_skip_batch_drops_the_batch_as_if_it_were_not_in_the_data():
    log = EventLog()
    skip = at(E.BATCH_START, lambda s: s.batch_index == 1, raiser(SkipBatch()))
    skipped = make_trainer(log, skip, max_epochs=1, val=False)
    skipped.fit()

    data = tiny_data()
    without = TensorDataset(
        torch.cat([data.tensors[0][:4], data.tensors[0][8:]]), torch.cat([data.tensors[1][:4], data.tensors[1][8:]])
    )
    reference = make_trainer(max_epochs=1, val=False, data=without)
    reference.fit()

    assert skipped.state.step == 2 and reference.state.step == 2
    assert same(weights(skipped), weights(reference))
    assert skipped.state.metrics == reference.state.metrics  # the skipped batch is not in train/loss either
    assert len(log.of(E.BATCH_START)) == 3 and len(log.of(E.BATCH_END)) == 2


def test_stop_epoch_ends_the_epoch_and_training_goes_on_with_the_next():
    log = EventLog()
    stop = at(E.BATCH_START, lambda s: s.epoch == 0 and s.batch_index == 1, raiser(StopEpoch()))
    trainer = make_trainer(log, stop, max_epochs=2)
    trainer.fit()
    assert trainer.state.step == 1 + 3
    assert trainer.state.epoch == 2
    events = [event for event, _ in log.seen]
    first_epoch = events[: events.index(E.EPOCH_END) + 1]
    assert first_epoch == [
        E.FIT_START,
        E.STAGE_START,
        E.EPOCH_START,
        *TRAIN_BATCH,
        E.BATCH_START,
        *VALIDATION,
        E.EPOCH_END,
    ]


def test_stop_epoch_after_backward_discards_that_batchs_gradients():
    stop_before = at(E.BATCH_START, lambda s: s.epoch == 0 and s.batch_index == 1, raiser(StopEpoch()))
    stop_after = at(E.AFTER_BACKWARD, lambda s: s.epoch == 0 and s.batch_index == 1, raiser(StopEpoch()))
    before, after = make_trainer(stop_before, val=False), make_trainer(stop_after, val=False)
    before.fit()
    after.fit()
    assert before.state.step == after.state.step == 4
    assert same(weights(before), weights(after))


def test_stop_training_ends_the_fit_after_the_current_epochs_end():
    log = EventLog()
    stop = at(E.BATCH_END, lambda s: s.step == 2, raiser(StopTraining()))
    trainer = make_trainer(log, stop, max_epochs=3)
    trainer.fit()
    assert trainer.state.step == 2
    assert trainer.state.should_stop
    assert log.of(E.EPOCH_START) == [(E.EPOCH_START, "fit")]
    assert [event for event, _ in log.seen][-2:] == [E.EPOCH_END, E.FIT_END]  # the stage did not finish: no STAGE_END


def test_should_stop_ends_the_fit_once_the_current_epoch_is_complete():
    epochs = []
    flag = at(E.BATCH_END, lambda s: s.step == 1, lambda s: setattr(s, "should_stop", True))
    ends = at(E.EPOCH_END, lambda s: True, lambda s: epochs.append((s.epoch, s.step)))
    trainer = make_trainer(flag, ends, max_epochs=3)
    trainer.fit()
    assert epochs == [(0, 3)]
    assert trainer.state.epoch == 1


def test_max_steps_stops_mid_epoch_and_still_validates():
    log = EventLog()
    ends = []
    recorder = at(
        E.EPOCH_END, lambda s: True, lambda s: ends.append((s.epoch, s.batch_index, s.step, "val/loss" in s.metrics))
    )
    trainer = make_trainer(log, recorder, max_epochs=5, max_steps=4, val_every_n_epochs=10)
    trainer.fit()
    assert trainer.state.step == 4
    # Epoch 0 does not validate (every 10 epochs); epoch 1 stops after one batch and validates.
    assert ends == [(0, 3, 3, False), (1, 1, 4, True)]
    assert len(log.of(E.VALIDATION_START)) == 1
    assert [event for event, _ in log.seen][-3:] == [E.VALIDATION_END, E.EPOCH_END, E.FIT_END]


def test_limit_batches_caps_training_and_validation_batches_per_epoch():
    log = EventLog()
    trainer = make_trainer(log, max_epochs=2, limit_batches=2, loader={"eval_batch_size": 2})  # 3 train, 4 val batches
    trainer.fit()
    assert trainer.state.step == 4
    epoch = [E.EPOCH_START, *TRAIN_BATCH * 2, *VALIDATION, E.EPOCH_END]
    assert [event for event, _ in log.seen] == [E.FIT_START, E.STAGE_START, *epoch, *epoch, E.STAGE_END, E.FIT_END]


@pytest.mark.parametrize(
    "fraction, train_batches, val_batches",
    [(0.5, 1, 2), (0.7, 2, 2), (0.1, 1, 1), (1.0, 3, 4)],
    ids=["half", "rounded down", "at least one", "all"],
)
def test_a_fractional_limit_batches_takes_that_share_of_each_loaders_batches(fraction, train_batches, val_batches):
    log = EventLog()
    trainer = make_trainer(
        log, max_epochs=1, limit_batches=fraction, loader={"eval_batch_size": 2}
    )  # 3 train, 4 val batches
    trainer.fit()
    assert trainer.state.step == train_batches
    assert len(log.of(E.EVAL_BATCH_END)) == val_batches


def test_evaluate_train_reads_every_training_sample_in_order_in_its_own_phase_and_updates_nothing():
    log = EventLog()
    batches: list[torch.Tensor] = []
    seen = at(E.EVAL_BATCH_END, lambda state: True, lambda state: batches.append(state.batch[0]))
    # Training reads 2 shuffled batches of 5 (the last 2 samples dropped); the evaluation reads all 12 in order: 5, 5, 2.
    trainer = make_trainer(log, seen, batch_size=5, loader={"shuffle": True, "drop_last": True})
    model, before = trainer.graph.models["model"], weights(trainer)
    model.train(True)
    values = trainer.evaluate_train()
    x, y = tiny_data().tensors
    with torch.no_grad():
        expected = F.cross_entropy(model(x), y).item()
    assert values == {"train/loss": pytest.approx(expected, rel=1e-6)}
    assert torch.equal(torch.cat(batches), x)
    assert log.seen == [
        (E.EVAL_START, "evaluate_train"),
        *[(E.EVAL_BATCH_END, "evaluate_train")] * 3,
        (E.EVAL_END, "evaluate_train"),
    ]
    assert same(before, weights(trainer)) and model.training  # evaluation mode only while it ran
