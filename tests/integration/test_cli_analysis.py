"""Comparing real runs: ``expresso runs compare``, ``load_runs``/``load_history``, and a finished job's re-run.

The runs are the session's two trainings of tiny.yaml (conftest.py's
``trained``: learning rates 0.003 and 0.01, 2 epochs each); every value
shown is checked against their run.json, config.yaml and metrics.csv read
here by hand. A job script re-run for a finished run folder (``train
--run-id ID --resume-if-exists``) finds its work done: exit 0, one line, the
folder untouched; without ``--resume-if-exists`` the id is refused as before.
All commands start together (the two ``train`` processes import torch; the
others do not).
"""

from __future__ import annotations

import csv
import shutil

import pytest
from cli_runs import one_line_error, read_config, read_record, table, tiny_run, together

import expresso
from expresso.commands.table import distinct_short

TINY = "configs/experiments/tiny.yaml"


def flat(tree, prefix=""):
    """Dotted key paths of the config's mappings; a list is one value, an empty mapping none."""
    if not isinstance(tree, dict):
        return {prefix: tree}
    out = {}
    for key, value in tree.items():
        out.update(flat(value, f"{prefix}.{key}" if prefix else key))
    return out


def files(folder) -> dict[str, bytes]:
    """Every file of a run folder but writer.lock (rewritten by each process that holds the folder, to name it)."""
    found = sorted(path for path in folder.rglob("*") if path.is_file() and path.name != "writer.lock")
    return {str(path.relative_to(folder)): path.read_bytes() for path in found}


@pytest.fixture(scope="module")
def compared(trained, project, tmp_path_factory):
    slow, fast = tiny_run(trained, 0.003), tiny_run(trained, 0.01)
    jobs = tmp_path_factory.mktemp("jobs")
    # A finished --run-id run (the job's first run, copied) for each job command: they start together, and each
    # takes its folder's lock, so two of them sharing one folder would see the other as its writer.
    done = {}
    for command in ("rerun", "plain-id", "changed"):
        done[command] = jobs / "tiny" / f"{command}-job"
        shutil.copytree(slow, done[command])
    before = files(slow)
    root = slow.parents[1]
    results = together(
        {
            "compare": (["runs", "compare", slow, fast], None),
            "all": (["runs", "compare", slow, fast, "--all"], None),
            "by-id": (["runs", "compare", slow.name, fast.name, "--runs-root", root], None),
            "unknown": (["runs", "compare", slow, "no-such-run", "--runs-root", root], None),
            "one": (["runs", "compare", slow, slow], None),
            "rerun": (["train", TINY, "--runs-root", jobs, "--run-id", "rerun-job", "--resume-if-exists"], None),
            "plain-id": (["train", TINY, "--runs-root", jobs, "--run-id", "plain-id-job"], None),
            "changed": (
                [
                    "train",
                    TINY,
                    "optimizer.lr=0.01",
                    "--runs-root",
                    jobs,
                    "--run-id",
                    "changed-job",
                    "--resume-if-exists",
                ],
                None,
            ),
        },
        cwd=project,
    )
    return {"results": results, "runs": (slow, fast), "root": root, "done": done, "before": before}


def expected_rows(runs, keys):
    """What compare shows for ``keys`` then the summary, from run.json and config.yaml read by hand."""
    records = [read_record(run) for run in runs]
    configs = [flat(read_config(run)) for run in runs]

    def shown(value):  # a metric: 6 significant digits, as train prints them
        return format(value, ".6g") if isinstance(value, float) else str(value)

    def setting(value):  # a setting: as the config holds it
        return "-" if value is None else str(value)

    rows = [["run", *(run.name for run in runs)], ["experiment", "tiny", "tiny"], ["status", "completed", "completed"]]
    rows.append(["duration", *("0" for _ in runs)])  # the frozen clock: started and ended in the same second
    # long values shortened in the middle as `expresso runs` shows them (tests/unit/commands/test_runs_table.py)
    rows += [[key, *distinct_short([setting(config[key]) for config in configs])] for key in keys]
    summaries = [record["summary"] for record in records]
    rows += [[key, *(shown(s[key]) for s in summaries)] for key in ("epochs", "step", "monitor", "mode", "best")]
    rows.append(["best_epoch", *(shown(s["best_epoch"]) for s in summaries)])
    for prefix, part in (("final.", lambda s: s["final"]["metrics"]), ("last.", lambda s: s["metrics"])):
        names = list(part(summaries[0]))
        rows += [[prefix + name, *(shown(part(s)[name]) for s in summaries)] for name in names]
    return rows


def test_compare_shows_the_differing_settings_then_each_runs_summary_and_metrics(compared):
    result = compared["results"]["compare"]
    assert result.returncode == 0, result.stderr
    assert table(result.stdout) == expected_rows(compared["runs"], ["optimizer.lr"])


def test_compare_all_shows_every_setting_and_a_run_id_is_found_under_the_runs_root(compared):
    result = compared["results"]["all"]
    assert result.returncode == 0, result.stderr
    every = list(flat(read_config(compared["runs"][0])))
    assert table(result.stdout) == expected_rows(compared["runs"], every)
    assert compared["results"]["by-id"].stdout == compared["results"]["compare"].stdout


def test_compare_refuses_an_unknown_run_and_a_single_run_in_one_line(compared):
    slow = compared["runs"][0]
    assert one_line_error(compared["results"]["unknown"]) == (
        f"expresso: error: runs compare: no-such-run: no such run folder, nor a run id under {compared['root']}"
    )
    assert one_line_error(compared["results"]["one"]) == (
        f"expresso: error: runs compare: received 1 run ({slow} {slow}); expected two or more"
    )


def test_rerunning_a_finished_jobs_command_is_a_no_op_that_says_so(compared):
    """The gin template's re-run: a job script run again after its run completed finds nothing to do."""
    rerun, done = compared["results"]["rerun"], compared["done"]["rerun"]
    assert rerun.returncode == 0, rerun.stderr
    assert rerun.stdout == f"{done}: holds a completed run; nothing to do (--force moves it aside and starts over)\n"
    assert files(done) == compared["before"]  # not a byte of the run changed


def test_a_rerun_whose_command_changed_a_setting_is_refused_naming_it_not_ignored(compared):
    """The run would go on (or stay done) with its own config: the job's new value would be accepted and ignored."""
    done = compared["done"]["changed"]
    assert one_line_error(compared["results"]["changed"]) == (
        f"expresso: error: {done}: holds a run started with another config: optimizer.lr: 0.01 (this command) vs "
        f"0.003 (the run); the run goes on only with its own (`expresso resume {done} KEY=VALUE` changes its "
        "settings), or --force moves it aside and starts over"
    )
    assert files(done) == compared["before"]


def test_a_plain_run_id_naming_a_finished_run_is_still_refused(compared):
    """Without --resume-if-exists the id names a new run: one already there is a mistake, not a re-run."""
    assert one_line_error(compared["results"]["plain-id"]) == (
        f"expresso: error: {compared['done']['plain-id']}: holds a completed run; use another --run-id, or --force to move it aside"
        " and start over"
    )


def test_load_runs_reads_each_runs_record_and_config(compared):
    slow, fast = compared["runs"]
    runs = expresso.load_runs(compared["root"], filter={"optimizer.lr": lambda lr: lr in (0.003, 0.01)})
    assert list(runs["path"]) == sorted([str(slow), str(fast)])
    for run in (slow, fast):
        row = runs[runs["path"] == str(run)].iloc[0].to_dict()
        summary = read_record(run)["summary"]
        assert {key: row[key] for key in flat(read_config(run))} == flat(read_config(run))
        assert (row["best"], row["best_epoch"], row["epochs"]) == (summary["best"], summary["best_epoch"], 2)
        assert {k[6:]: v for k, v in row.items() if k.startswith("final.")} == summary["final"]["metrics"]
        assert {k[5:]: v for k, v in row.items() if k.startswith("last.")} == summary["metrics"]


def test_load_history_holds_every_metric_cell_of_each_runs_metrics_csv(compared):
    runs = expresso.load_runs(compared["root"], filter="`optimizer.lr` == 0.01")
    history = expresso.load_history(runs)
    (fast,) = [run for run in compared["runs"] if str(run) == runs["path"].iloc[0]]
    with (fast / "metrics.csv").open(newline="") as handle:
        expected = [
            (int(row["epoch"]), int(row["step"]), metric, float(value))
            for row in csv.DictReader(handle)
            for metric, value in row.items()
            if metric not in ("epoch", "step") and value != ""
        ]
    assert list(history[["epoch", "step", "metric", "value"]].itertuples(index=False, name=None)) == expected
    assert set(history["run_id"]) == {fast.name}
