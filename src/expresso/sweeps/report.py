"""ReportToStudy: a trial's per-epoch objective, reported to its Optuna study, and the pruner's verdict obeyed.

The trial is its own process (``expresso train``), so it reaches the study
through the storage (SQLite under the runs root, or a database server): its
reports are what the pruner compares the other trials with, whichever
process or machine runs them. A pruned trial ends after that epoch (its
checkpoint written, its run folder complete) and says so in the study
(user attribute ``pruned_at_epoch``), which the sweep reads to record the
trial as pruned.
"""

from __future__ import annotations

import logging
from typing import Any

from ..callbacks.metric_watcher import MetricWatcher
from ..engine.state import State
from .study import PRUNED_AT

log = logging.getLogger("expresso")


class ReportToStudy(MetricWatcher):
    """Reports ``metric`` to trial ``trial`` of study ``study`` at every epoch end that measured it; stops when pruned.

    Args:
        storage: the study's storage URL (``sqlite:///...``, ``postgresql://...``).
        study: the study's name.
        trial: the trial's number in the study.
        metric: the objective (``val/acc``).
        pruner: an ``optuna.pruners`` object (None: report, never prune).
    """

    order = 65  # after EarlyStopping's verdict on the same epoch

    def __init__(self, storage: str, study: str, trial: int, metric: str, pruner: Any = None):
        super().__init__(metric)
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self.study = optuna.load_study(study_name=study, storage=storage, pruner=pruner)
        storage_ = self.study._storage
        self.trial_id = storage_.get_trial_id_from_study_id_trial_number(self.study._study_id, trial)
        self.trial = optuna.Trial(self.study, self.trial_id)
        self.prunes = pruner is not None

    def on_epoch_end(self, state: State) -> None:
        value = self.read(state)
        if value is None:
            return
        self.trial.report(value, step=state.epoch + 1)
        if self.prunes and self.trial.should_prune():
            self.study._storage.set_trial_user_attr(self.trial_id, PRUNED_AT, state.epoch + 1)
            reason = f"the sweep's pruner stopped the trial ({self.monitor} {value:.6g} at epoch {state.epoch + 1})"
            state.request_stop(self.state_key, reason)
            log.info("ReportToStudy: %s", reason)

    def still_stops(self, state: State) -> bool:
        return True  # a pruned trial stays pruned when resumed
