"""``expresso report`` of a real sweep: one self-contained HTML page, its tables against the sweep's files, its refusals.

The module trains one small Optuna sweep of digits once (three trials at
once, one epoch of 5 batches): a learning rate that completes, one the
ThresholdPruner stops after its first epoch, and a negative one whose trial
fails before its run begins. The page is parsed (html.parser): its figures
are PNG data URIs that decode, its table holds the trials best first as
trials.csv and run.json have them, and the failed and pruned trials are
listed with why. Opening it in headless Chromium is make test-slow's.
"""

from __future__ import annotations

import base64
import csv
import io
import json
import subprocess
import sys
import textwrap
from html.parser import HTMLParser
from pathlib import Path

import matplotlib.image
import pytest
from cli_runs import EXAMPLES, expresso, finish, read_record, start

from expresso.cli import main

ROOT = Path(__file__).resolve().parents[2]
BASE = EXAMPLES / "configs" / "experiments" / "digits_mlp.yaml"
SWEEP = f"""\
    extends: {BASE}
    name: reported
    trainer: {{max_epochs: 1, batch_size: 128, limit_batches: 5}}
    sweep:
      search: optuna
      parameters:
        optimizer.lr: {{choice: [1.0e-7, 1.0e-2, -1.0]}}  # pruned, completed, failed (torch refuses it)
      trials: 3
      jobs: 3
      sampler: {{class: optuna.samplers.BruteForceSampler, seed: 0}}
      pruner: {{class: optuna.pruners.ThresholdPruner, lower: 0.2}}
    """
PNG = b"\x89PNG\r\n\x1a\n"
REFUSED = "expected a runs root, an experiment folder or a sweep folder"


class Page(HTMLParser):
    """The page's images (alt, src), its table rows (cells' text) and its list of unfinished trials."""

    def __init__(self, text: str):
        super().__init__()
        self.images: list[tuple[str, str]] = []
        self.rows: list[list[str]] = []
        self.unfinished: list[str] = []
        self.tags: list[str] = []
        self._cell: list[str] | None = None
        self._item: list[str] | None = None
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.append(tag)
        if tag == "img":
            self.images.append((attrs["alt"], attrs["src"]))
        elif tag == "tr":
            self.rows.append([])
        elif tag in ("td", "th"):
            self._cell = []
        elif tag == "li":
            self._item = []

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self.rows[-1].append("".join(self._cell))
            self._cell = None
        elif tag == "li" and self._item is not None:
            self.unfinished.append("".join(self._item))
            self._item = None

    def handle_data(self, data):
        for part in (self._cell, self._item):
            if part is not None:
                part.append(data)


@pytest.fixture(scope="module")
def sweep(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("report")
    (folder / "sweep.yaml").write_text(textwrap.dedent(SWEEP))
    done = finish(start(["sweep", "sweep.yaml", "--runs-root", "runs"], folder))
    assert done.returncode == 1, done.stderr  # a failed trial: the sweep says so
    [found] = (folder / "runs" / "reported").glob("sweep-*")
    return found


@pytest.fixture(scope="module")
def report(sweep) -> Path:
    out = sweep.parent.parent.parent / "report.html"
    done = expresso("report", sweep, "--out", out, cwd=sweep.parent)
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"written: {out} (1 group(s), 3 trial(s))\n"
    return out


# The sweep these read (four processes, ~13 s) runs in `make test-slow`; CI runs the README's `expresso report` line.
@pytest.mark.slow
def test_the_report_of_a_sweep_is_one_page_of_its_trials_best_first_with_its_figures_inlined(sweep, report):
    text = report.read_text()
    page = Page(text)
    assert "script" not in page.tags and "link" not in page.tags and "http" not in text  # nothing to fetch or run
    # the curves, the objective against the one parameter, the parallel coordinates: decodable PNGs
    assert [alt for alt, _ in page.images] == ["learning curves", "val/acc vs optimizer.lr", "parallel coordinates"]
    for _, src in page.images:
        prefix, data = src.split(",", 1)
        assert prefix == "data:image/png;base64"
        png = base64.b64decode(data, validate=True)
        assert png[:8] == PNG and matplotlib.image.imread(io.BytesIO(png), format="png").ndim == 3
    rows = {float(row["optimizer.lr"]): row for row in csv.DictReader((sweep / "trials.csv").open())}
    assert [rows[lr]["status"] for lr in (1e-2, 1e-7, -1.0)] == ["completed", "pruned", "failed"]
    good, pruned, failed = (int(rows[lr]["trial"]) for lr in (1e-2, 1e-7, -1.0))
    objective = float(rows[1e-2]["objective"])
    assert objective == read_record(sweep / f"trial-{good:03d}")["summary"]["final"]["metrics"]["val/acc"]
    unscored = sorted([(pruned, "pruned", "1e-07", f"trial-{pruned:03d}"), (failed, "failed", "-1", "")])
    assert page.rows == [
        ["trial", "status", "val/acc", "optimizer.lr", "run folder"],
        [f"trial {good}", "completed", f"{objective:.6g}", "0.01", f"trial-{good:03d}"],
        *([f"trial {n}", status, "", lr, folder] for n, status, lr, folder in unscored),
    ]
    reached = read_record(sweep / f"trial-{pruned:03d}")["summary"]["metrics"]["val/acc"]
    assert not (sweep / f"trial-{failed:03d}").exists()
    assert sorted(page.unfinished) == sorted(
        [
            f"trial {pruned} pruned (optimizer.lr=1e-07): stopped by the sweep's pruner after epoch 1"
            f" with val/acc = {reached:.4g}",
            f"trial {failed} failed (optimizer.lr=-1): no run folder: the trial's process ended before its run began",
        ]
    )


@pytest.mark.slow  # the sweep above
def test_another_metric_ranks_the_completed_trials_by_its_final_value(sweep, tmp_path, capsys):
    out = tmp_path / "loss.html"
    assert main(["report", str(sweep.parent), "--out", str(out), "--metric", "val/loss"]) == 0  # the experiment folder
    page = Page(out.read_text())
    [good] = [row for row in csv.DictReader((sweep / "trials.csv").open()) if row["status"] == "completed"]
    loss = read_record(sweep / Path(good["run_dir"]).name)["summary"]["final"]["metrics"]["val/loss"]
    assert page.rows[0][2] == "val/loss" and page.rows[1][:3] == [f"trial {good['trial']}", "completed", f"{loss:.6g}"]
    assert [alt for alt, _ in page.images] == ["learning curves", "val/loss vs optimizer.lr", "parallel coordinates"]


@pytest.mark.parametrize(
    ("path", "out", "expected"),
    [
        ("{sweep}", "report.png", "--out {tmp}/report.png: expected a file name ending in .html"),
        ("{tmp}/missing", "report.html", "{tmp}/missing: no such folder of runs"),
        ("{tmp}/empty", "report.html", f"{{tmp}}/empty: holds no run and no sweep; {REFUSED}"),
        ("{sweep}/trials.csv", "report.html", f"{{sweep}}/trials.csv: not a folder; {REFUSED}"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_writes_nothing(tmp_path, capsys, path, out, expected):
    """Refused before any run is read: a folder that only looks like a sweep's will do (no training needed)."""
    (tmp_path / "empty").mkdir()
    sweep = tmp_path / "sweep"
    sweep.mkdir()
    (sweep / "trials.csv").write_text("number,status\n")
    fill = {"sweep": sweep, "tmp": tmp_path}
    assert main(["report", path.format(**fill), "--out", str(tmp_path / out)]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [f"expresso: error: {expected.format(**fill)}"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty", "sweep"]


@pytest.mark.slow  # a Chromium
def test_the_report_opens_in_headless_chromium_without_console_errors(report):
    script = textwrap.dedent(
        f"""\
        import json, sys
        sys.path.insert(0, {str(ROOT / "scripts")!r})
        from browser import Browser
        browser = Browser()
        try:
            print(json.dumps(browser.console_errors({report.as_uri()!r})))
        finally:
            browser.close()
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"errors": [], "images": 3}
