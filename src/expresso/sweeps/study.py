"""The Optuna bridge: the study a sweep searches with, the trials it asks for and the outcomes it is told.

Optuna is imported here, when a sweep searches with it (the ``sweep`` extra).
The study lives in a storage every process of the sweep reaches: by
default SQLite in the sweep's folder (``study.db``); ``--storage URL`` (any
SQLAlchemy URL Optuna supports, ``postgresql://...``) shares it with
``expresso sweep --worker`` processes on other machines. The budget
(``trials``) counts every trial of the study, whoever runs it: a trial asked
past it (two workers asking at once) is told failed, marked ``surplus``, and
never run. A trial left running by a sweep that was killed is run again
(resumed in its run folder) by the next sweep on the same local storage;
on a shared storage it may be running elsewhere, so it is left alone.
"""

from __future__ import annotations

import threading
from typing import Any

from ..config import instantiate
from .plan import PlannedTrial, Sweep
from .spec import SweepError

PRUNED_AT = "pruned_at_epoch"  # user attribute ReportToStudy sets: the epoch (from 1) after which the pruner stopped it
SURPLUS = "surplus"  # user attribute of a trial asked past the budget: told failed, never run
REPORTER = "expresso.sweeps.report.ReportToStudy"


def optuna_module():
    try:
        import optuna
    except ImportError:
        raise SweepError("search: optuna needs Optuna: pip install torch-expresso[sweep]") from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna


def open_study(sweep: Sweep, storage: str, *, worker: bool):
    """The sweep's study: created (or found again, to resume) by a sweep; a worker joins one that exists."""
    optuna = optuna_module()
    spec = sweep.spec
    assert spec is not None
    sampler = instantiate(spec.sampler) if spec.sampler else optuna.samplers.TPESampler(seed=spec.seed)
    if worker:
        try:
            return optuna.load_study(study_name=sweep.sweep_id, storage=storage, sampler=sampler)
        except KeyError:
            raise SweepError(
                f"--worker: no study {sweep.sweep_id!r} in {_shown(storage)}; start the sweep first (the same command without --worker)"
            ) from None
    return optuna.create_study(
        study_name=sweep.sweep_id,
        storage=storage,
        sampler=sampler,
        direction=spec.objective.direction,
        load_if_exists=True,
    )


class StudyTrials:
    """Trials asked of the study one at a time (the slots share it) and their outcomes told."""

    def __init__(self, sweep: Sweep, study, storage: str, *, reclaim: bool):
        self.sweep, self.study, self.storage = sweep, study, storage
        self.lock = threading.Lock()
        optuna = optuna_module()
        self.states = optuna.trial.TrialState
        running = [t for t in study.get_trials(deepcopy=False) if t.state == self.states.RUNNING]
        self.stale = sorted(running, key=lambda t: t.number, reverse=True) if reclaim else []
        self.exhausted = False  # the sampler has tried every combination it can (it asked to stop)

    def next(self) -> PlannedTrial | None:
        with self.lock:
            if self.stale:  # interrupted by a killed sweep: run (resume) it again with its parameters
                frozen = self.stale.pop()
                return self._planned(frozen.number, dict(frozen.params))
            if self.exhausted or len(self.study.get_trials(deepcopy=False)) >= self.sweep.budget:
                return None
            trial = self.study.ask()
            if trial.number >= self.sweep.budget:
                trial.set_user_attr(SURPLUS, True)
                self.study.tell(trial, state=self.states.FAIL)
                return None
            params = {p.key: p.suggest(trial) for p in self.sweep.spec.parameters}  # type: ignore[union-attr]
            trial.set_user_attr("run_dir", str(self.sweep.folder.trial(trial.number).path))
            return self._planned(trial.number, params)

    def _planned(self, number: int, params: dict[str, Any]) -> PlannedTrial:
        spec = self.sweep.spec
        assert spec is not None and self.sweep.base is not None
        import json

        reporter = {
            "class": REPORTER,
            "storage": self.storage,
            "study": self.sweep.sweep_id,
            "trial": number,
            "metric": spec.objective.metric,
            "pruner": spec.pruner,
        }
        overrides = (*self.sweep.trial_overrides(self.sweep.base, params), f"+callbacks=[{json.dumps(reporter)}]")
        return PlannedTrial(number, self.sweep.base, overrides, params)

    def pruned(self, number: int) -> bool:
        with self.lock:
            trial_id = self.study._storage.get_trial_id_from_study_id_trial_number(self.study._study_id, number)
            return PRUNED_AT in self.study._storage.get_trial_user_attrs(trial_id)

    def tell(self, number: int, status: str, objective: float | None) -> None:
        """The study hears how trial ``number`` ended: its objective, pruned, or failed."""
        with self.lock:
            try:
                if status == "completed" and objective is not None:
                    self.study.tell(number, objective)
                elif status == "pruned":
                    self.study.tell(number, state=self.states.PRUNED)
                elif status != "interrupted":  # an interrupted trial stays running: the next sweep resumes it
                    self.study.tell(number, state=self.states.FAIL)
            except RuntimeError as exc:
                # A sampler that has tried everything (GridSampler, BruteForceSampler) calls study.stop(), which
                # only works inside study.optimize; the outcome is stored by then (tell stores it in a finally).
                if "Study.stop" not in str(exc):
                    raise
                self.exhausted = True

    def rows(self) -> list[dict[str, Any]]:
        """Every trial of the study (surplus ones left out): number, state, value and parameters."""
        with self.lock:
            trials = self.study.get_trials(deepcopy=False)
        return [
            {"number": t.number, "state": t.state.name.lower(), "value": t.value, "params": dict(t.params)}
            for t in trials
            if not t.user_attrs.get(SURPLUS)
        ]


def _shown(storage: str) -> str:
    """A storage URL without its password, for messages."""
    import re

    return re.sub(r"://([^:/@]+):[^@]*@", r"://\1:***@", storage)
