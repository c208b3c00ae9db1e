"""Running a planned sweep: J slots, each running one trial at a time, until no trial is left.

Trials are taken in order (a grid's, a series') or asked of the Optuna study;
a trial whose run folder holds a completed run is skipped (a re-run of the
same sweep runs only what is missing), any other is started or resumed by
``expresso train --run-dir TRIAL --resume-if-exists``. After each trial the
summary is rewritten. The exit status is 0 when every trial completed (or
was pruned), 1 when one failed, 130 when the sweep was interrupted.
"""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any

from .launch import Finished, LocalLauncher, slot_environment, trial_command
from .plan import PlannedTrial, Sweep
from .study import StudyTrials
from .summary import run_outcome, write_summary

ENDED = ("completed", "pruned")


class PlannedTrials:
    """A grid's, random search's or series' trials, handed out in order to the slots."""

    def __init__(self, sweep: Sweep):
        self.sweep = sweep
        self.queue = list(reversed(sweep.trials))
        self.lock = threading.Lock()

    def next(self) -> PlannedTrial | None:
        with self.lock:
            return self.queue.pop() if self.queue else None


def run_sweep(
    sweep: Sweep,
    *,
    jobs: int,
    devices: Sequence[str] | None,
    launcher: Any = None,
    study: StudyTrials | None = None,
    passed: Sequence[str] = (),
) -> int:
    """Run the sweep's missing trials, ``jobs`` at once; write its summary; the exit status."""
    launcher = launcher or LocalLauncher()
    metric = sweep.spec.objective.metric if sweep.spec is not None else sweep_monitor(sweep)
    source = study or PlannedTrials(sweep)
    results: dict[int, dict[str, Any]] = {}
    params = {t.number: (t.params, t.config) for t in sweep.trials}
    lock = threading.Lock()
    sweep.folder.path.mkdir(parents=True, exist_ok=True)
    failures: list[BaseException] = []
    spans = _earlier_spans(sweep)  # trial -> when its process started and ended (a re-run keeps the skipped ones')

    def summarise() -> None:
        rows: list[dict[str, Any]] = []
        if study is not None:
            for row in study.rows():
                folder = sweep.folder.trial(row["number"])
                status, objective = run_outcome(folder, metric)
                state = {"complete": "completed", "fail": "failed"}.get(row["state"], row["state"])
                status = state if state in ("pruned", "failed") else status
                rows.append(
                    {
                        "number": row["number"],
                        "status": status,
                        "objective": objective if status == "completed" else None,
                        "params": row["params"],
                        "config": str(sweep.base),
                    }
                )
        else:
            for number, (values, config) in params.items():
                status, objective = run_outcome(sweep.folder.trial(number), metric)
                rows.append(
                    {
                        "number": number,
                        "status": status,
                        "objective": objective,
                        "params": values,
                        "config": str(config),
                    }
                )
        for row in rows:
            row.update(spans.get(row["number"], {}))
        write_summary(sweep, rows)

    def slot(index: int) -> None:
        env = slot_environment(index, jobs, devices)
        try:
            while (trial := source.next()) is not None:
                folder = sweep.folder.trial(trial.number)
                status, objective = run_outcome(folder, metric)
                if status == "completed":  # a re-run: done before (an Optuna trial killed before the study heard)
                    _say(f"trial {trial.number:03d}: completed earlier, skipped ({folder.path})")
                    if study is None:
                        continue
                    finished = Finished(0, "")
                else:
                    command = trial_command(trial.config, trial.overrides, folder.path, passed)
                    launched = _stamp()
                    finished = launcher.run(command, env, trial.number)
                    spans[trial.number] = {"launched_at": launched, "finished_at": _stamp()}
                    status, objective = run_outcome(folder, metric)
                if study is not None:
                    if status == "completed" and study.pruned(trial.number):
                        status = "pruned"
                    study.tell(trial.number, status, objective)
                with lock:
                    results[trial.number] = {"status": status, "returncode": finished.returncode}
                    shown = "" if objective is None or status != "completed" else f" {metric}={objective:.6g}"
                    _say(f"trial {trial.number:03d}: {status}{shown} ({folder.path})")
                    if finished.returncode not in (0,) and status not in ENDED:
                        tail = "\n".join(finished.stderr.strip().splitlines()[-3:])
                        _say(f"trial {trial.number:03d}: exit {finished.returncode}: {tail}")
                    summarise()
        except BaseException as exc:  # noqa: BLE001 - handed to the main thread, which raises it
            failures.append(exc)

    threads = [threading.Thread(target=slot, args=(index,), daemon=True) for index in range(jobs)]
    for thread in threads:
        thread.start()
    try:
        for thread in threads:
            thread.join()
    except KeyboardInterrupt:
        _say(
            f"interrupted: the trials running were stopped at a checkpoint; run the same command again to finish {sweep.folder.path}"
        )
        return 130
    finally:
        summarise()
    if failures:
        raise failures[0]
    ended = [r for r in results.values() if r["status"] not in ENDED]
    print(f"sweep folder: {sweep.folder.path}")
    print(sweep.folder.table.read_text(), end="")
    return 1 if ended else 0


def sweep_monitor(sweep: Sweep) -> str:
    """A series' objective column: the first config's trainer.monitor."""
    from ..config import load_config

    return str(load_config(sweep.configs[0], sweep.overrides)["trainer"]["monitor"])


def _stamp() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def _earlier_spans(sweep: Sweep) -> dict[int, dict[str, str]]:
    """The process times an earlier run of the sweep recorded, by trial (none when it wrote no summary)."""
    try:
        results = json.loads(sweep.folder.summary.read_text())["results"]
        return {row["number"]: {k: row[k] for k in ("launched_at", "finished_at") if k in row} for row in results}
    except (OSError, ValueError, KeyError, TypeError):
        return {}


_SAYING = threading.Lock()  # the slots' threads say their trials' lines at once


def _say(line: str) -> None:
    """One whole line on stderr: print writes the text and its newline apart, so two threads' lines could interleave."""
    with _SAYING:
        sys.stderr.write(line + "\n")
        sys.stderr.flush()
