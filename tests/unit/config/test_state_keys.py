"""Two ``callbacks:``/``loggers:`` entries that would keep their state under one checkpoint key are refused at --check."""

from expresso.callbacks import EarlyStopping
from expresso.config.state_keys import shared_state_key_problems
from expresso.loggers import Logger


class Watch(EarlyStopping):
    """A second EarlyStopping the way the message advises: a subclass, so another key."""


class Tally(Logger):
    """A logger class listed among the callbacks too."""


class Keyed(EarlyStopping):
    """Tells its instances apart itself: left to the trainer."""

    def __init__(self, monitor: str = "val/loss", **options):
        super().__init__(monitor=monitor, **options)

    @property
    def state_key(self) -> str:
        return f"Keyed[{self.monitor}]"


def problems(tree: dict) -> list[str]:
    return [str(problem) for problem in shared_state_key_problems(tree, lambda path: "exp.yaml")]


def test_a_second_callback_of_one_class_is_refused_naming_both_entries():
    stopping = "expresso.callbacks.EarlyStopping"
    tree = {
        "callbacks": [
            {"class": stopping, "monitor": "val/loss"},
            {"class": "expresso.callbacks.Checkpoint"},
            {"class": "expresso.callbacks.early_stopping.EarlyStopping", "monitor": "val/acc", "mode": "max"},
        ]
    }
    assert problems(tree) == [
        "exp.yaml: callbacks.2: a second EarlyStopping, as callbacks.0: a run's checkpoints keep each callback's state "
        "under its class name, so a class is listed once (for a second one of its kind, list a subclass of EarlyStopping)"
    ]
    tree["callbacks"][2]["class"] = f"{__name__}.Watch"
    assert problems(tree) == []


def test_callbacks_and_loggers_share_one_checkpoint_so_one_class_in_both_lists_is_refused():
    tally = f"{__name__}.Tally"
    assert problems({"callbacks": [{"class": tally}], "loggers": ["csv", {"class": tally}]}) == [
        "exp.yaml: loggers.1: a second Tally, as callbacks.0: a run's checkpoints keep each logger's state under its "
        "class name, so a class is listed once (for a second destination of one kind, list a subclass of Tally)"
    ]


def test_a_class_with_its_own_state_key_and_entries_that_name_no_class_are_left_to_other_checks():
    keyed = {"class": f"{__name__}.Keyed"}
    assert problems({"callbacks": [keyed, {**keyed, "monitor": "val/acc"}]}) == []
    assert problems({"callbacks": [{"class": "no.such.Thing"}, {"class": "no.such.Thing"}, "text", 3]}) == []
    assert problems({"callbacks": "not a list", "loggers": ["unknown", "unknown"]}) == []
