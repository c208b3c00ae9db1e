"""The figures the README states: each must be what was measured, so the docs cannot drift from the code.

The performance table and its prose come from the committed benchmark run
(benchmarks/RESULTS.md): checked here, in CI. The examples' accuracies need
full trainings: checked in the slow target (test_examples_graphs.py).
"""

from __future__ import annotations

import re
from pathlib import Path

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()
BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
RESULTS = (BENCHMARKS / "RESULTS.md").read_text()
RERUNS = (BENCHMARKS / "reruns" / "README.md").read_text()  # the partial re-runs between full reports
EARLIER_FULL = (BENCHMARKS / "reruns" / "full-4d50ae9" / "RESULTS.md").read_text()  # the one the re-runs compare with
PREVIOUS_FULL = (BENCHMARKS / "reruns" / "full-b4cf91c" / "RESULTS.md").read_text()  # the full run before RESULTS.md's
JOB_RERUN_FULL = (
    BENCHMARKS / "reruns" / "full-0d4a4c0" / "RESULTS.md"
).read_text()  # the one before (the job re-run's)
OLDER_FULL = (BENCHMARKS / "reruns" / "full-44f74ed" / "RESULTS.md").read_text()  # the full run before that one
README_ROWS = {  # README row -> RESULTS.md row
    "hand-written loop": "hand loop",
    "hand-written loop on expresso's heap": "hand loop, expresso's heap",
    "expresso API": "expresso API",
    "expresso API, checkpoints off": "expresso API, no checkpoints",
    "expresso CLI (`expresso train`)": "expresso CLI",
    "ignite": "ignite",
    "Accelerate": "Accelerate",
    "Lightning, progress/logger/checkpoint off": "Lightning minimal",
    "Lightning, defaults": "Lightning defaults",
}


def section(text: str, heading: str) -> str:
    start = text.index(heading)
    following = text.find("\n## ", start + len(heading))
    return text[start : following if following != -1 else len(text)]


def rows(markdown: str) -> dict[str, list[str]]:
    """A markdown table's rows by their first cell."""
    found = {}
    for line in markdown.splitlines():
        if line.startswith("|") and not line.startswith("|---"):
            cells = [cell.strip() for cell in line.strip("|").split("|")]
            found[cells[0]] = cells[1:]
    return found


def table(text: str, heading: str) -> dict[str, list[str]]:
    """The rows of a section's main table: a one-fit case's process split, which follows it, left out."""
    return rows(section(text, heading).split("The whole process", 1)[0])


def attribution(text: str, heading: str = "## Where the fit time goes") -> dict[tuple[str, str], list[str]]:
    """The rows of a table by case and variant, by (case, variant): the attribution's (warm fits, one default
    dropped at a time) or, with its heading, the phases' (cold fits split epoch by epoch)."""
    found = {}
    for line in section(text, heading).splitlines():
        if line.startswith("| mlp") or line.startswith("| cnn"):
            cells = [cell.strip() for cell in line.strip("|").split("|")]
            found[cells[0], cells[1]] = cells[2:]
    return found


def rerun_section(folder: str, heading: str, table: str) -> tuple[str, dict[str, list[str]], str]:
    """A re-run's committed report, the rows of its ``table`` section, and the prose of its section in the re-runs'
    README (``heading``), whose table must repeat those rows."""
    report = (BENCHMARKS / "reruns" / folder / "RESULTS.md").read_text()
    measured, shown = rows(section(report, table)), section(RERUNS, heading)
    assert rows(shown) == measured
    return report, measured, " ".join(shown.split())


def checkout(report: str) -> str:
    """The checkout a report was measured at (its src/ clean)."""
    return re.search(r"- checkout: (\w+), src/ clean", report).group(1)


def first(cell: str) -> str:
    """A RESULTS.md cell's median, without its (min-max) range."""
    return cell.split(" ")[0]


def test_the_readme_performance_table_is_the_committed_benchmark_run():
    shown = rows(section(README, "## Performance"))
    mlp, cnn, job = (table(RESULTS, heading) for heading in ("## tiny MLP", "## small CNN", "## small ResNet"))
    assert set(README_ROWS) <= set(shown)
    for row_name, measured in README_ROWS.items():
        mlp_fit, cnn_fit, job_fit, first_step, rss = shown[row_name]
        mlp_row, cnn_row, job_row = mlp[measured], cnn[measured], job.get(measured)
        if measured == "hand loop":
            assert (mlp_fit, cnn_fit, job_fit) == tuple(
                f"1.00 ({float(first(row[0])):.2f} s)" for row in (mlp_row, cnn_row, job_row)
            )
            assert rss == "1.00"
        else:
            assert (mlp_fit, cnn_fit) == (first(mlp_row[1]), first(cnn_row[1])), row_name
            assert job_fit == (first(job_row[1]) if job_row else "-"), row_name  # the job runs no checkpoint-off row
            assert rss == f"{float(mlp_row[9].rstrip('x')):.2f}x", row_name
        assert first_step == f"{float(first(mlp_row[6])):.2f} s", (
            row_name
        )  # seconds to the first step beyond import torch


def test_the_readme_performance_prose_states_the_committed_figures():
    prose = " ".join(section(README, "## Performance").split())  # line breaks as spaces
    data, compiled = table(RESULTS, "## data-bound MLP"), rows(section(RESULTS, "## torch.compile"))
    targets = section(RESULTS, "## Targets")
    assert f"({first(data['expresso API, defaults'][1])} the single-process loop)" in prose
    imported = float(
        re.search(r"import expresso.engine: added to import torch \(in-process\) \| ([\d.]+) s", targets).group(1)
    )
    assert f"adds {imported:.2f} s to `import torch`" in prose
    for case, word in (("mlp", "MLP"), ("cnn", "CNN"), ("job", "on the ResNet")):
        limit = re.search(rf"{case}: expresso API fit time / hand loop \| [\d.]+ x \| <= ([\d.]+) x", targets).group(1)
        assert f"{float(limit):.2f}x {word}" in prose
    process = re.search(r"minus the hand-written script's \| -?[\d.]+ s \| <= ([\d.]+) s", targets).group(1)
    assert f"within {process} s of the hand script's" in prose
    assert "first step within 1.5 s" in prose and "| <= 1.5 s |" in targets
    without = first(table(RESULTS, "## tiny MLP")["expresso API, no checkpoints"][1])
    assert f"without it the fit is {without}. On the CNN it is most of it" in prose
    api, without = (
        first(table(RESULTS, "## small CNN")[row][1]) for row in ("expresso API", "expresso API, no checkpoints")
    )
    assert f"On the CNN it is most of it: without it the fit is {without}." in prose and float(without[:-1]) < 1.03
    assert float(api[:-1]) - 1 > 2 * (float(without[:-1]) - 1)  # "most of it"
    per_epoch = rows(section((BENCHMARKS / "reruns" / "issue19-epoch" / "RESULTS.md").read_text(), "## Time per epoch"))
    mlp_epoch, cnn_epoch = (first(per_epoch[model][2]) for model in ("MLP", "CNN"))
    assert (
        f"expresso measures {mlp_epoch} the hand loop on the MLP and {cnn_epoch} on the CNN (that case re-run" in prose
    )
    assert "`benchmarks/reruns/issue19-epoch`" in prose
    hand_mlp = float(first(table(RESULTS, "## tiny MLP")["hand loop"][0]))
    assert "whose epochs take under 40 ms" in prose and hand_mlp / 10 < 0.040
    ratios = [row[3] for key, row in compiled.items() if key in ("mlp", "cnn") and row[0] == "compile"]
    assert f"({ratios[0]} and {ratios[1]} per steady epoch)" in prose
    assert f"(checkout {checkout(RESULTS)};" in prose
    before = {key: cells[0].split()[0] for key, cells in rows(section(PREVIOUS_FULL, "## Targets")).items()}
    cnn, job = (float(before[f"{case}: expresso CLI fit time / hand loop"]) for case in ("cnn", "job"))
    assert f"the previous run measured the CNN through the CLI at {cnn:.3f}x and the ResNet at {job:.3f}x" in prose
    now, then = (float(first(table(text, "## small ResNet")["hand loop"][0])) for text in (RESULTS, PREVIOUS_FULL))
    assert f"on a machine that ran about {then / now:.1f}x slower" in prose  # the hand loop's own ResNet fit
    job = table(RESULTS, "## small ResNet")
    assert "expresso is faster than the hand loop" in prose
    assert all(
        float(first(job[row][1])[:-1]) < 1 for row in ("expresso API", "expresso CLI", "hand loop, expresso's heap")
    )


def test_the_restructuring_rerun_table_is_its_two_committed_reports():
    """The before/after table of the re-runs (issue 13) repeats the Targets rows of the two reports committed beside it."""
    reruns = BENCHMARKS / "reruns"
    before, after = (
        {
            key: cells[0]
            for key, cells in rows(section((reruns / name / "RESULTS.md").read_text(), "## Targets")).items()
        }
        for name in ("issue13-before", "issue13-after")
    )
    shown = rows(section(RERUNS, "## Re-run after the restructuring (issue 13)"))
    shown.pop("target")
    assert shown == {key: [before[key], after[key]] for key in after if key != "target"}


def test_the_trackers_overhead_table_is_its_committed_report():
    """The re-runs' trackers section (issue 15) repeats the table and the target of the report committed beside it."""
    report = (BENCHMARKS / "reruns" / "issue15-trackers" / "RESULTS.md").read_text()
    measured = rows(section(report, "## Trackers"))
    shown = section(RERUNS, "## Trackers (issue 15)")
    assert rows(shown) == measured
    [ratio] = [cells[0] for key, cells in rows(section(report, "## Targets")).items() if key.startswith("trackers")]
    assert f"**missed, {float(ratio.split()[0]):.2f}x**" in shown
    assert f"is {float(measured['API, loggers [csv, tensorboard, mlflow]'][5].split('x')[0]):.2f}x" in shown
    assert "- checkout: 645fc67" in report and "at checkout 645fc67" in shown


def test_the_issue19_rerun_table_is_its_committed_report():
    """The re-runs' issue 19 section repeats the Targets table of the report committed beside it, at its checkout."""
    report = (BENCHMARKS / "reruns" / "issue19" / "RESULTS.md").read_text()
    shown = section(RERUNS, "## Re-run for issue 19")
    assert rows(shown) == rows(section(report, "## Targets"))
    assert f"at checkout {checkout(report)} " in shown
    fits = rows(section(report, "## tiny MLP"))["hand loop"][0]  # median (min-max) of the hand loop's MLP fit
    low, high = (float(value) for value in re.search(r"\(([\d.]+)-([\d.]+)\)", fits).groups())
    full = float(first(rows(section(EARLIER_FULL, "## tiny MLP"))["hand loop"][0]))  # the full report it compares with
    assert f"{low:.2f}-{high:.2f} s against {full:.2f} s" in shown
    job_fits = rows(section(report, "## small ResNet"))["hand loop"][0]  # the job's fits vary this much by round
    low, high = (float(value) for value in re.search(r"\(([\d.]+)-([\d.]+)\)", job_fits).groups())
    assert f"({low:.0f}-{high:.0f} s)" in shown
    process = rows(section(report, "## Targets"))[
        "job: `expresso train` process (start to exit) minus the hand-written script's"
    ][0]
    assert f"not as {float(process.split()[0]):.1f} s" in shown
    for case, word in (("mlp", "MLP"), ("cnn", "CNN")):
        ratio = rows(section(report, "## Targets"))[f"{case}: expresso CLI fit time / hand loop"][0]
        assert f"{float(ratio.split()[0]):.2f}x" in shown, word


def test_the_issue19_section_states_the_full_runs_figures():
    """Every figure RESULTS.md's issue 19 section states is the committed full run's (or the previous one's), rounded as written."""
    shown = " ".join(section(RESULTS, "## Issue 19").split())
    targets = {key: cells[0].split()[0] for key, cells in rows(section(RESULTS, "## Targets")).items()}
    previous = {key: cells[0].split()[0] for key, cells in rows(section(PREVIOUS_FULL, "## Targets")).items()}
    mlp, cnn, job = (table(RESULTS, heading) for heading in ("## tiny MLP", "## small CNN", "## small ResNet"))
    cnn_before, job_before = (table(PREVIOUS_FULL, heading) for heading in ("## small CNN", "## small ResNet"))
    split, before_split = (
        rows(section(text, "## small ResNet").split("The whole process", 1)[1]) for text in (RESULTS, PREVIOUS_FULL)
    )
    checkpoint = rows(section(RESULTS, "## Checkpoint write"))
    warm = attribution(RESULTS)
    cold = attribution(RESULTS, "## Where a cold fit's time goes")

    def ratio(cell: str) -> str:  # "1.14x (1.06-1.25)" -> "1.14x"
        return cell.split(" ")[0]

    def spread(cell: str) -> str:  # "1.14x (1.06-1.25)" -> "(1.06-1.25)"
        return cell.split(" ")[1]

    def target(name: str, digits: int = 2, of: dict = targets) -> str:
        return f"{float(of[name]):.{digits}f}"

    def phase(case: str, variant: str, column: int) -> str:  # the median of a phases cell, as written
        return cold[case, variant][column].split(" ")[0]

    def attributed(case: str, variant: str) -> str:  # "1.215x (0.729-1.869)" -> "1.215x"
        return warm[case, variant][1].split(" ")[0]

    # The run, against the previous one: the same code, another machine.
    assert "- checkout: b4cf91c, src/ clean" in PREVIOUS_FULL and "(reruns/full-b4cf91c)" in shown
    assert "- cpu: AMD EPYC," in RESULTS and "- cpu: Intel(R) Xeon(R)" in PREVIOUS_FULL
    assert "an AMD EPYC where the previous ran on an Intel Xeon" in shown
    hand_now, hand_then = (first(table["hand loop"][0]) for table in (job, job_before))
    torch_now, torch_then = (first(table["import torch (start-up floor)"][5]) for table in (job, job_before))
    assert f"the hand loop's ResNet fit took {hand_now} s against {hand_then} s" in shown
    assert f"`import torch` {torch_now} s against {torch_then} s" in shown
    assert f"(the hand loop's CNN fit {spread(cnn['hand loop'][0])[1:-1]} s)" in shown

    # Met.
    cli, api = (target(f"job: expresso {door} fit time / hand loop", 3) for door in ("CLI", "API"))
    before = (target(f"job: expresso {door} fit time / hand loop", 3, previous) for door in ("CLI", "API"))
    assert (
        "the job's fit through both doors ({}x CLI, {}x API, limit 1.01x; {}x and {}x in the previous".format(
            cli, api, *before
        )
        in shown
    )
    heap_row = "hand loop, expresso's heap"
    assert f"(the hand loop on expresso's heap measures {ratio(job[heap_row][1])} on this machine)" in shown
    process_name = "job: `expresso train` process (start to exit) minus the hand-written script's"
    process = target(process_name, 3)
    assert f"the job's whole `expresso train` process ({process} s against the hand script's, limit 0.3 s)" in shown
    assert process == first(split["expresso CLI"][1])
    outside, outside_before = (first(table["expresso CLI"][3]) for table in (split, before_split))
    assert f"spends {outside} s more than the hand script ({outside_before} s in the previous report)" in shown
    rss = [target(f"{case}: expresso CLI peak RSS / hand loop", 3) for case in ("mlp", "cnn", "job")]
    assert "the peak RSS through the CLI (MLP {}x, CNN {}x, job {}x, limit 1.05x)".format(*rss) in shown
    steps = [
        target(f"{case}: `expresso train` to first step, beyond import torch", 3) for case in ("mlp", "cnn", "job")
    ]
    job_step_before = target("job: `expresso train` to first step, beyond import torch", 3, previous)
    assert "(MLP {} s, CNN {} s, job {} s, limit 1.5 s; the job's was {} s".format(*steps, job_step_before) in shown
    assert f"on top of torch ({target('import expresso.engine: added to import torch (in-process)', 3)} s" in shown

    # The CNN: located in the checkpoints.
    cli, api = (target(f"cnn: expresso {door} fit time / hand loop", 3) for door in ("CLI", "API"))
    assert f"**CNN fit, {cli}x CLI and {api}x API (limit 1.02x).**" in shown
    without, without_before = (ratio(table["expresso API, no checkpoints"][1]) for table in (cnn, cnn_before))
    assert f"the cold API fit is {without} ({without_before} in the previous report)" in shown
    assert f"the API fit measures {phase('cnn', 'expresso API', 1)} with checkpoints and " in shown
    assert f"{phase('cnn', 'expresso API, no checkpoints', 1)} without" in shown
    with_, bare, hand = (
        phase("cnn", variant, 3) for variant in ("expresso API", "expresso API, no checkpoints", "hand loop")
    )
    assert f"training pass takes {with_} ms against {bare} ms without (the hand loop's {hand} ms)" in shown
    between = [phase("cnn", variant, 5) for variant in ("expresso API", "expresso API, no checkpoints")]
    assert "the epoch-end callbacks {} ms against {} ms".format(*between) in shown
    end = [phase("cnn", variant, 6) for variant in ("expresso API", "expresso API, no checkpoints")]
    assert "waits {} ms for the last write ({} ms without)".format(*end) in shown
    write = cold["cnn", "expresso API"][7]  # "4.09 (2.80-9.01) / 2.84 (2.12-5.74)"
    wall, cpu = write.split(" / ")[0].split(" ")[0], write.split(" / ")[1].split(" ")[0]
    assert f"Each write takes {wall} ms on the writer thread, {cpu} ms of it" in shown
    assert (
        f"{attributed('cnn', 'expresso')} with every default on, {attributed('cnn', 'no checkpoints')} without "
        f"checkpoints, {attributed('cnn', 'no checkpoints, no progress, no metrics')} without progress" in shown
    )
    assert f"{cli}x {spread(cnn['expresso CLI'][1])} through the CLI, {api}x {spread(cnn['expresso API'][1])}" in shown
    assert (
        f"The hand loop on expresso's heap measures {ratio(cnn[heap_row][1])}, "
        f"ignite {ratio(cnn['ignite'][1])}, Accelerate {ratio(cnn['Accelerate'][1])}" in shown
    )
    # "the training pass grows by about the write's CPU time", on both models; the ResNet's epochs take seconds.
    for case in ("mlp", "cnn"):
        grows = float(phase(case, "expresso API", 3)) - float(phase(case, "expresso API, no checkpoints", 3))
        write_cpu = float(cold[case, "expresso API"][7].split(" / ")[1].split(" ")[0])
        assert 0.6 < grows / write_cpu < 1.4, case
    assert "the training pass grows by about the write's CPU time" in shown
    assert (
        float(first(job["hand loop"][0])) / 5 > 1 and float(target("job: expresso API fit time / hand loop", 3)) <= 1.01
    )

    # The MLP: the checkpoints, then the training metrics.
    cli, api = (target(f"mlp: expresso {door} fit time / hand loop", 3) for door in ("CLI", "API"))
    assert f"**MLP fit, {cli}x CLI and {api}x API (limit 1.00x).**" in shown
    assert (
        f"the API fit measures {phase('mlp', 'expresso API', 1)} with checkpoints and "
        f"{phase('mlp', 'expresso API, no checkpoints', 1)} without" in shown
    )
    with_, bare, hand = (
        phase("mlp", variant, 3) for variant in ("expresso API", "expresso API, no checkpoints", "hand loop")
    )
    write = cold["mlp", "expresso API"][7]
    wall, cpu = write.split(" / ")[0].split(" ")[0], write.split(" / ")[1].split(" ")[0]
    assert (
        f"training pass takes {with_} ms against {bare} ms without (the hand loop's {hand} ms), each write {wall} ms "
        f"({cpu} ms CPU), the fit's end {phase('mlp', 'expresso API', 6)} ms" in shown
    )
    assert (
        f"{attributed('mlp', 'expresso')} with every default on, {attributed('mlp', 'no checkpoints')} without "
        f"checkpoints, {attributed('mlp', 'no checkpoints, no progress, no metrics')} without progress" in shown
    )
    assert (
        f"The CLI measures {cli}x {spread(mlp['expresso CLI'][1])} against the API's {api}x "
        f"{spread(mlp['expresso API'][1])}" in shown
    )

    # Memory, and the misses of earlier issues.
    api_rss = [target(f"{case}: expresso API peak RSS / hand loop", 3) for case in ("mlp", "cnn", "job")]
    assert "**Peak RSS through the API, {}x on the MLP (limit 1.05x; CNN {}x, job {}x):**".format(*api_rss) in shown
    assert f"ignite measures {mlp['ignite'][9]}, Lightning minimal {mlp['Lightning minimal'][9]}" in shown
    assert f"the trackers ({target('trackers: CLI fit with csv + TensorBoard + MLflow / csv alone', 3)}x" in shown
    saved = target("checkpoint: save_atomic / torch.save", 3)
    assert f"({saved}x; with an fsync `torch.save` alone is {ratio(checkpoint['torch.save + fsync'][1])})" in shown


def test_the_epoch_rerun_section_is_its_committed_report():
    """The re-runs' time-per-epoch section repeats its report's table, and its prose that report's and the full run's."""
    report, measured, prose = rerun_section(
        "issue19-epoch", "## The time-per-epoch case after a fix to its harness (issue 19)", "## Time per epoch"
    )
    assert f"at checkout {checkout(report)} " in prose and f"In the full run at {checkout(RESULTS)} " in prose
    assert "--repeats 9" in report and "--repeats 9" in prose
    disturbed = rows(section(RESULTS, "## Time per epoch"))
    hand_low, hand_high = re.search(r"\(([\d.]+)-([\d.]+)\)", disturbed["CNN"][0]).groups()
    assert (
        f"measured expresso at {first(disturbed['MLP'][2])} the hand loop on the MLP and {first(disturbed['CNN'][2])} on "
        f"the CNN, with the hand loop's CNN epochs ranging from {hand_low} s to {hand_high} s" in prose
    )
    low, high = re.search(r"\(([\d.]+)-([\d.]+)\)", measured["CNN"][0]).groups()
    mlp, cnn = (first(measured[model][2]) for model in ("MLP", "CNN"))
    assert f"{mlp} on the MLP and {cnn} on the CNN (the hand loop's CNN epochs {low}-{high} s)" in prose
    assert all(float(first(measured[model][2])[:-1]) > 1 for model in ("MLP", "CNN"))  # "slower ... on both"
    results_note = " ".join(section(RESULTS, "## Issue 19").split())
    assert f"(the hand loop's CNN epochs range from {hand_low} s to {hand_high} s)" in results_note
    assert f"so its CNN ratio ({first(disturbed['CNN'][2])}) is not expresso's" in results_note
    assert f"(reruns/issue19-epoch): {mlp} on the MLP and {cnn} on the CNN" in results_note


def test_the_cnn_rerun_section_is_its_committed_report():
    """The re-runs' CNN section repeats its report's Targets rows, and its prose that report's and the full run's at its checkout."""
    report, _, prose = rerun_section("issue19-cnn", "## The CNN case, 12 rounds (issue 19)", "## Targets")
    measured_at = checkout(report)
    assert measured_at == checkout(PREVIOUS_FULL)
    assert f"at checkout {measured_at} " in prose
    assert f"the full run at the same checkout (`full-{measured_at}/`)" in prose
    full = {key: cells[0].split()[0] for key, cells in rows(section(PREVIOUS_FULL, "## Targets")).items()}
    cli, api = (full[f"cnn: expresso {door} fit time / hand loop"] for door in ("CLI", "API"))
    assert f"measured the CNN's fit at {cli}x through the CLI and {api}x through the API" in prose
    measured = table(report, "## small CNN")
    (cli, cli_low, cli_high), (api, api_low, api_high) = (
        (float(v) for v in re.match(r"([\d.]+)x \(([\d.]+)-([\d.]+)\)", measured[f"expresso {door}"][1]).groups())
        for door in ("CLI", "API")
    )
    assert api_low <= cli <= api_high and cli_low <= api <= cli_high  # "each median within the other's range"
    targets = {key: cells[0].split()[0] for key, cells in rows(section(report, "## Targets")).items()}
    cli, api = (targets[f"cnn: expresso {door} fit time / hand loop"] for door in ("CLI", "API"))
    assert f"{cli}x through the CLI and {api}x through the API, each median" in prose


def test_the_job_rerun_section_is_its_committed_report():
    """The re-runs' job section repeats its report's Targets rows, and its prose that report's and the two full runs'."""
    import json

    folder = BENCHMARKS / "reruns" / "issue19-job"
    report, _, prose = rerun_section("issue19-job", "## The job case, 8 rounds (issue 19)", "## Targets")
    assert f"at checkout {checkout(report)} " in prose
    full, before = (
        rows(section(text, "## Targets"))["job: expresso CLI fit time / hand loop"][0].split()[0]
        for text in (JOB_RERUN_FULL, OLDER_FULL)
    )
    full_checkout = re.search(r"- checkout: (\w+)", JOB_RERUN_FULL).group(1)
    assert f"the full run at {full_checkout} measured" in prose
    assert (
        f"at {float(full):.2f}x through the CLI, where the report before it had measured {float(before):.2f}x" in prose
    )
    measured = table(report, "## small ResNet")
    cli, api = (first(measured[f"expresso {door}"][1]) for door in ("CLI", "API"))
    assert f"{cli} through the CLI and {api} through the API" in prose
    runs = json.loads((folder / "results.json").read_text())["results"]["job"]["runs"]
    hand = [run["fits"][0]["seconds"] for run in runs["hand loop"]]
    above = {
        door: sum(run["fits"][0]["seconds"] > base for run, base in zip(runs[f"expresso {door}"], hand))
        for door in ("CLI", "API")
    }
    assert above["CLI"] == above["API"] and f"in {above['CLI']} rounds of {len(hand)}" in prose
    outside = first(rows(section(report, "## small ResNet").split("The whole process", 1)[1])["expresso CLI"][3])
    assert f"spends {outside} s more than the hand script" in prose


def test_the_writer_thread_section_is_its_committed_report():
    """The re-runs' writer-thread section repeats its report's table, and its prose that report's and the full run's."""
    report, measured, prose = rerun_section(
        "issue19-writer", "## The checkpoint writer thread (issue 19)", "## Checkpoint write"
    )
    blocked, inline, threaded = (
        first(measured["writer thread"][2]),
        first(measured["save_atomic"][0]),
        first(measured["writer thread"][0]),
    )
    assert f"the copy alone, {blocked} s against {inline} s" in prose and f"({threaded} s:" in prose
    rss = re.search(r"Peak RSS of the process: (\d+) MB", report).group(1)
    full = re.search(r"Peak RSS of the process: (\d+) MB", section(OLDER_FULL, "## Checkpoint write")).group(1)
    assert f"({rss} MB, against {full} MB in the full report of checkout 44f74ed" in prose
    assert checkout(report) == "dd6000b" and "at checkout dd6000b" in prose
