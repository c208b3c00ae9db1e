"""Dispatcher.listing: the loop's callbacks per event, read from the handler lists the loop itself calls."""

from __future__ import annotations

from expresso.engine import Callback, Event, Every
from expresso.engine.callback import Dispatcher


class Late(Callback):
    order = 10

    def on_epoch_end(self, state) -> None:
        pass


class Early(Callback):
    order = -5

    def on_epoch_end(self, state) -> None:
        pass

    def on_batch_end(self, state) -> None:
        pass

    def listens(self, event):
        return Every(steps=25) if event is Event.BATCH_END else True


class OnlyWhenPredicting(Callback):
    phases = ("predict",)

    def on_eval_start(self, state) -> None:
        pass


class Silent(Callback):
    """Overrides nothing: never listed."""


def test_each_event_lists_its_callbacks_in_run_order_with_their_filters():
    listing = Dispatcher([Late(), Silent(), OnlyWhenPredicting(), Early()]).listing("fit")
    assert listing == [(Event.BATCH_END, ["Early (every 25 steps)"]), (Event.EPOCH_END, ["Early", "Late"])]


def test_a_phase_lists_only_the_callbacks_of_that_phase():
    assert Dispatcher([Late(), OnlyWhenPredicting()]).listing("predict") == [
        (Event.EPOCH_END, ["Late"]),
        (Event.EVAL_START, ["OnlyWhenPredicting"]),
    ]


def test_a_filter_describes_itself():
    assert Every(steps=3).describe() == "every 3 steps"
    assert Every(epochs=2, once=True).describe() == "every 2 epochs, once"
    assert Every(once=True).describe() == "once"
