"""Reading a monitored metric at epoch end: a typo fails loudly, a stale value is not read twice.

``state.metrics`` keeps the latest value of every key, so on an epoch that
did not validate (``val_every_n_epochs`` > 1) ``val/loss`` still holds the
previous validation's value. Counting it again would make patience run out
on epochs that measured nothing; a ``val/`` metric is therefore read only on
epochs whose validation pass ran. A fit with no validation at all never reads
it: ``finished`` then warns rather than let that pass in silence (a fit that
trained no epoch, e.g. a resume with nothing left, has nothing to warn about).
"""

from __future__ import annotations

import difflib
import logging

from ..engine.state import State

log = logging.getLogger("expresso")


class Monitor:
    """The metric one callback watches; the callback forwards epoch start and validation end."""

    def __init__(self, key: str, owner: str):
        self.key, self.owner = key, owner
        self.validated = False
        self.read_once = False
        self.epochs = 0  # epochs started in this fit

    def epoch_started(self) -> None:
        self.validated = False
        self.epochs += 1

    def validation_ended(self) -> None:
        self.validated = True

    def read(self, state: State) -> float | None:
        """The value measured this epoch, or None when this epoch measured none."""
        if self.key.startswith("val/") and not self.validated:
            return None
        if self.key not in state.metrics:
            if self.key in state.metric_names:
                return None  # a pipeline this stage does not run reports it
            raise KeyError(missing_message(self.owner, self.key, state.metrics))
        self.read_once = True
        return float(state.metrics[self.key])

    def finished(self) -> None:
        """At fit end: warn when no epoch of the fit validated, so the metric was never read."""
        if self.epochs and not self.read_once and self.key.startswith("val/"):
            log.warning("%s never read %r: no validation ran in this fit (no val_data?)", self.owner, self.key)


def watches_the_same(owner: str, saved: dict, monitor: str | None, mode: str) -> bool:
    """Whether a saved state was counted on this monitor and mode; a resume that changed them starts counting afresh (and says so)."""
    before = (
        saved.get("monitor", monitor),
        saved.get("mode", mode),
    )  # states saved before monitors were recorded: the same
    if before == (monitor, mode):
        return True
    log.info(
        "%s: now watching %s (%s), not %s (%s) as before the resume: counting afresh", owner, monitor, mode, *before
    )
    return False


def missing_message(owner: str, key: str, metrics) -> str:
    close = difflib.get_close_matches(key, list(metrics), n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return f"{owner} monitors {key!r}, which is not among the metrics {sorted(metrics)}{hint}"
