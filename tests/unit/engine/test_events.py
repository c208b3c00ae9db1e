"""Events and control flow: the documented order, callback order and phases, skip/stop exceptions, limits."""

from __future__ import annotations

import functools
import itertools
import re

import pytest
import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.data import TensorDataset

from expresso.engine import Callback, Event, SkipBatch, StopEpoch, StopTraining, Trainer
from expresso.engine.callback import Dispatcher, Every
from expresso.engine.state import Stop

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

TRAIN_BATCH = [
    E.BATCH_START,
    E.AFTER_FORWARD,
    E.AFTER_BACKWARD,
    E.BEFORE_OPTIMIZER_STEP,
    E.BATCH_END,
    E.BATCH_CHECKPOINT,
]
VALIDATION = [E.VALIDATION_START, E.EVAL_BATCH_END, E.EVAL_BATCH_END, E.VALIDATION_END]


def test_a_fit_fires_the_events_in_the_documented_order():
    log = EventLog()
    make_trainer(log, max_epochs=2, validate_before_fit=True).fit()

    epoch = [E.EPOCH_START, *TRAIN_BATCH * 3, *VALIDATION, E.EPOCH_END, E.EPOCH_CHECKPOINT]
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
    assert trainer.state.stop == Stop.FIT
    assert log.of(E.EPOCH_START) == [(E.EPOCH_START, "fit")]
    assert [event for event, _ in log.seen][-3:] == [
        E.EPOCH_END,
        E.EPOCH_CHECKPOINT,
        E.FIT_END,
    ]  # the stage did not finish: no STAGE_END


def test_a_stop_request_ends_the_fit_once_the_current_epoch_is_complete():
    epochs = []
    flag = at(E.BATCH_END, lambda s: s.step == 1, lambda s: s.request_stop("test", "asked at step 1"))
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
    assert [event for event, _ in log.seen][-4:] == [E.VALIDATION_END, E.EPOCH_END, E.EPOCH_CHECKPOINT, E.FIT_END]


def test_limit_batches_caps_training_and_validation_batches_per_epoch():
    log = EventLog()
    trainer = make_trainer(log, max_epochs=2, limit_batches=2, eval_batch_size=2)  # 3 train, 4 val batches
    trainer.fit()
    assert trainer.state.step == 4
    epoch = [E.EPOCH_START, *TRAIN_BATCH * 2, *VALIDATION, E.EPOCH_END, E.EPOCH_CHECKPOINT]
    assert [event for event, _ in log.seen] == [E.FIT_START, E.STAGE_START, *epoch, *epoch, E.STAGE_END, E.FIT_END]


@pytest.mark.parametrize(
    "fraction, train_batches, val_batches",
    [(0.5, 1, 2), (0.7, 2, 2), (0.1, 1, 1), (1.0, 3, 4)],
    ids=["half", "rounded down", "at least one", "all"],
)
def test_a_fractional_limit_batches_takes_that_share_of_each_loaders_batches(fraction, train_batches, val_batches):
    log = EventLog()
    trainer = make_trainer(log, max_epochs=1, limit_batches=fraction, eval_batch_size=2)  # 3 train, 4 val batches
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


# -- the callback API: documented events, typed handlers, filters ------------------


def test_every_event_is_documented_where_it_is_declared_and_has_a_typed_documented_handler():
    import inspect

    from expresso.engine.state import State

    for event in Event:
        assert event.__doc__ and event.__doc__ != Event.__doc__, event
        handler = getattr(Callback, f"on_{event.value}")
        assert handler.__doc__, handler
        signature = inspect.signature(handler, eval_str=True, globals={"State": State})
        assert [(p.name, p.annotation) for p in signature.parameters.values()] == [
            ("self", inspect.Parameter.empty),
            ("state", State),
        ]
        assert signature.return_annotation is None


def filtered(event: Event, every: Every, seen: list, read=lambda s: s.step) -> Callback:
    """A callback of a new class handling ``event`` behind ``every``: appends ``read(state)`` when called."""
    cls = type(
        f"Filtered{next(_classes)}",
        (Callback,),
        {f"on_{event.value}": lambda self, state: seen.append(read(state)), "listens": lambda self, e: every},
    )
    return cls()


def test_every_steps_calls_a_batch_handler_after_every_nth_optimizer_step_only():
    seen: list[int] = []
    make_trainer(filtered(E.BATCH_END, Every(steps=2), seen), max_epochs=3).fit()  # 3 batches an epoch: 9 steps
    assert seen == [2, 4, 6, 8]


def test_every_epochs_calls_an_epoch_handler_in_every_nth_epoch_counted_from_one():
    seen: list[int] = []
    make_trainer(filtered(E.EPOCH_END, Every(epochs=2), seen, lambda s: s.epoch + 1), max_epochs=5, val=False).fit()
    assert seen == [2, 4]


def test_once_runs_a_handler_the_first_time_its_filter_passes_and_never_again():
    first, first_even = [], []
    make_trainer(
        filtered(E.BATCH_END, Every(once=True), first), filtered(E.BATCH_END, Every(steps=2, once=True), first_even)
    ).fit()
    assert (first, first_even) == ([1], [2])


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({}, "Every needs steps=N, epochs=N or once=True. Received: none of them"),
        ({"steps": 0}, "Invalid value for argument `steps`. Received: steps=0; expected an integer >= 1"),
        ({"epochs": 1.5}, "Invalid value for argument `epochs`. Received: epochs=1.5; expected an integer >= 1"),
        ({"steps": 2, "epochs": 2}, "Every counts steps or epochs, not both. Received: steps=2, epochs=2"),
    ],
)
def test_a_filter_that_cannot_mean_anything_is_refused_showing_the_value(kwargs, message):
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        Every(**kwargs)


# -- the end of a step and of an epoch: work, then record and save ------------------


def test_a_metric_a_callback_adds_at_epoch_end_is_what_every_epoch_checkpoint_handler_sees_whatever_the_orders():
    late = at(E.EPOCH_END, lambda s: True, lambda s: s.metrics.update(late_metric=float(s.epoch)), order=10_000)
    seen: list[float] = []
    early = at(E.EPOCH_CHECKPOINT, lambda s: True, lambda s: seen.append(s.metrics["late_metric"]), order=-10_000)
    make_trainer(early, late, max_epochs=2).fit()
    assert seen == [0.0, 1.0]


def test_a_checkpoint_asked_for_at_epoch_end_is_written_after_the_last_epoch_checkpoint_handler(tmp_path):
    order: list[str] = []
    ask = at(
        E.EPOCH_END,
        lambda s: s.epoch == 0,
        lambda s: s.save_checkpoint(tmp_path / "a.ckpt", then=lambda: order.append("written")),
    )
    last = at(E.EPOCH_CHECKPOINT, lambda s: s.epoch == 0, lambda s: order.append("last handler"), order=10_000)
    make_trainer(ask, last, max_epochs=1).fit()
    assert order == ["last handler", "written"]


def test_a_stop_raised_once_a_checkpoint_is_written_waits_until_every_other_asked_for_is_written(tmp_path):
    """Preemption stops the run from its checkpoint's ``then``: it needs no order to come after the Checkpoint's."""

    def stop():
        raise RuntimeError("stopped after its checkpoint")

    first = at(E.EPOCH_CHECKPOINT, lambda s: True, lambda s: s.save_checkpoint(tmp_path / "first.ckpt", then=stop))
    second = at(E.EPOCH_CHECKPOINT, lambda s: True, lambda s: s.save_checkpoint(tmp_path / "second.ckpt"))
    with pytest.raises(RuntimeError, match="stopped after its checkpoint"):
        make_trainer(first, second, max_epochs=2).fit()
    assert (tmp_path / "first.ckpt").is_file() and (tmp_path / "second.ckpt").is_file()


# -- one stop signal -----------------------------------------------------------


def test_state_stop_says_why_the_fit_ended():
    stopped = make_trainer(
        at(E.EPOCH_END, lambda s: s.epoch == 1, lambda s: s.request_stop("test", "enough")), max_epochs=4
    )
    stopped.fit()
    out_of_steps = make_trainer(max_epochs=4, max_steps=5)
    out_of_steps.fit()
    ran_out = make_trainer(max_epochs=2)
    ran_out.fit()
    # A stage stop is spent when its stage ends (state.stops is cleared); max_steps stays the reason the fit ended.
    assert (stopped.state.epoch, stopped.state.stop) == (2, Stop.NONE)
    assert (out_of_steps.state.step, out_of_steps.state.stop) == (5, Stop.STEPS)
    assert (ran_out.state.epoch, ran_out.state.stop) == (2, Stop.NONE)


def test_a_stop_request_and_max_steps_in_one_epoch_record_both():
    seen = []
    ask = at(E.EPOCH_END, lambda s: True, lambda s: s.request_stop("test", "enough"))
    record = at(E.EPOCH_CHECKPOINT, lambda s: True, lambda s: seen.append((s.stop, s.position()["stage_stopped"])))
    make_trainer(ask, record, max_epochs=3, max_steps=3).fit()
    assert seen == [(Stop.STAGE | Stop.STEPS, True)]
