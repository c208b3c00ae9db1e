"""The screenshots of docs/trackers.md of TensorBoard and the MLflow UI, retaken from a real run: ``python scripts/screenshots.py``.

What it does, in a scratch folder: trains the digits MLP with ``loggers:
[csv, tensorboard, mlflow]`` (``expresso train
examples/digits/configs/experiments/digits_mlp_tracked.yaml``, 20 epochs,
about a minute on a CPU), starts that page's two commands there
(``tensorboard --logdir runs/`` and ``mlflow ui --backend-store-uri
sqlite:///runs/mlflow.db``, on free localhost ports), opens TensorBoard's
scalars dashboard (filtered on ``val/acc``) and the MLflow run's "Model
metrics" tab in headless Chromium, waits until every chart has drawn its
curve, shoots them, stops both servers and writes
``docs/images/tensorboard_scalars.png`` and ``docs/images/mlflow_metrics.png``
(256-colour PNGs, to stay small in git).

``--only sweep-report`` takes docs/sweeps.md's picture instead: it runs the
digits sweep (``expresso sweep
examples/digits/configs/experiments/digits_mlp_sweep.yaml``, 12 Optuna
trials two at a time, a minute or two on a CPU), writes its ``expresso
report`` page, opens it in headless Chromium (it must log no console error
and draw every figure) and shoots the whole page as
``docs/images/sweep-report.png``.

Needs: the tensorboard and mlflow extras (``pip install -c constraints.txt
-e '.[tensorboard,mlflow]'``) and a Chromium (``apt-get install chromium``;
``--chromium PATH`` names another). The MLflow page is shown the way a
person sees it after a click or two: in "Model training" mode, its assistant
panel closed, Plotly's hover toolbar hidden.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from browser import Browser

ROOT = Path(__file__).resolve().parents[1]
SWEEP_CONFIG = ROOT / "examples/digits/configs/experiments/digits_mlp_sweep.yaml"
SWEEP_NAME = "digits-mlp-sweep"  # the sweep config's name: its folder under the runs root
CONFIG = ROOT / "examples/digits/configs/experiments/digits_mlp_tracked.yaml"
EXPERIMENT = "digits-mlp-tracked"  # the config's name: the MLflow experiment
WIDTH, HEIGHT = 1400, 900
MLFLOW_HEIGHT = 1080  # both sections of charts, train and val
# Shadow roots included: TensorBoard's scalars dashboard is made of Polymer elements.
DEEP = (
    "function deep(root, sel) { let found = [...root.querySelectorAll(sel)];"
    " for (const e of root.querySelectorAll('*')) if (e.shadowRoot) found = found.concat(deep(e.shadowRoot, sel));"
    " return found; };"
)
# the two charts in view, val/acc and lr, have drawn their lines (the cards further down draw when scrolled to)
TENSORBOARD_DRAWN = (
    DEEP + "deep(document, 'path.line').filter(p => (p.getAttribute('d') || '').length > 100).length >= 2"
)
MLFLOW_CHARTS = 5  # train/acc, train/batch_loss, train/loss, val/acc, val/loss (lr is in its own section)
MLFLOW_DRAWN = f"document.querySelectorAll('.js-plotly-plot .scatterlayer path.js-line').length >= {MLFLOW_CHARTS}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tool(name: str) -> str:
    """A console script of this environment (tensorboard, mlflow): the one beside this Python, else on PATH."""
    beside = Path(sys.executable).with_name(name)
    return str(beside) if beside.is_file() else name


@contextlib.contextmanager
def server(command: list[str], cwd: Path, ready_url: str, log: Path) -> Iterator[None]:
    """A server started in its own process group (mlflow ui forks workers), stopped with the whole group."""
    with log.open("wb") as out:
        process = subprocess.Popen(command, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"{command[0]} exited with status {process.returncode}:\n{log.read_text()}")
            with contextlib.suppress(OSError):
                urllib.request.urlopen(ready_url, timeout=5).read()
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"{command[0]} did not answer {ready_url} within 120 s:\n{log.read_text()}")
            time.sleep(1)
        yield
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def train(runs: Path) -> None:
    command = [sys.executable, "-m", "expresso", "train", str(CONFIG), "--runs-root", str(runs)]
    print("$", " ".join(command), flush=True)
    with (runs.parent / "train.log").open("wb") as log:
        done = subprocess.run(command, cwd=runs.parent, stdout=log, stderr=subprocess.STDOUT)
    if done.returncode != 0:
        raise RuntimeError(f"training failed (status {done.returncode}):\n{(runs.parent / 'train.log').read_text()}")


def expresso(args: list[str], cwd: Path, log: Path) -> None:
    command = [sys.executable, "-m", "expresso", *args]
    print("$", " ".join(command), flush=True)
    with log.open("wb") as out:
        done = subprocess.run(command, cwd=cwd, stdout=out, stderr=subprocess.STDOUT)
    if done.returncode != 0:
        raise RuntimeError(f"{args[0]} failed (status {done.returncode}):\n{log.read_text()}")


def shoot_sweep_report(folder: Path, chromium: str, path: Path) -> None:
    """The digits sweep run, its report written and opened; the whole page shot."""
    expresso(["sweep", str(SWEEP_CONFIG), "--runs-root", "runs"], folder, folder / "sweep.log")
    report = folder / "report.html"
    expresso(["report", f"runs/{SWEEP_NAME}", "--out", str(report)], folder, folder / "report.log")
    browser = Browser(chromium, WIDTH, HEIGHT)
    try:
        loaded = browser.console_errors(report.as_uri())
        if loaded["errors"] or not loaded["images"]:
            raise RuntimeError(f"{report}: {loaded}")
        browser.resize(WIDTH, int(browser.evaluate("document.documentElement.scrollHeight")))
        time.sleep(1)
        browser.screenshot(path)
    finally:
        browser.close()


def mlflow_run(base: str) -> tuple[str, str]:
    """The experiment id and run id of the one run trained."""
    query = urllib.parse.urlencode({"experiment_name": EXPERIMENT})
    with urllib.request.urlopen(f"{base}/api/2.0/mlflow/experiments/get-by-name?{query}") as reply:
        experiment = json.load(reply)["experiment"]["experiment_id"]
    request = urllib.request.Request(
        f"{base}/api/2.0/mlflow/runs/search",
        data=json.dumps({"experiment_ids": [experiment]}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request) as reply:
        [run] = json.load(reply)["runs"]
    return experiment, run["info"]["run_id"]


def shoot_tensorboard(browser: Browser, base: str, path: Path) -> None:
    browser.open(f"{base}/?darkMode=false#scalars&tagFilter=val%2Facc")
    browser.wait_for(TENSORBOARD_DRAWN, what="TensorBoard's val/acc curve")
    time.sleep(2)  # the other cards below finish drawing
    browser.screenshot(path)


def shoot_mlflow(browser: Browser, base: str, path: Path) -> None:
    experiment, run = mlflow_run(base)
    browser.open(f"{base}/")
    browser.wait_for("document.readyState === 'complete'", what="the MLflow UI")
    # the assistant opens itself over the page on a first visit; a person closes it once
    browser.evaluate(
        "localStorage.setItem('mlflow.assistant.fab.autoOpenedOnFirstLoad_v1', 'true');"
        "localStorage.setItem('mlflow.assistant.panelOpen_v1', 'false');"
    )
    browser.wait_for(
        "[...document.querySelectorAll('span')].some(s => s.innerText === 'Model training')",
        what="the mode switch",
    )
    browser.evaluate("[...document.querySelectorAll('span')].find(s => s.innerText === 'Model training').click()")
    browser.resize(WIDTH, MLFLOW_HEIGHT)
    browser.open(f"{base}/#/experiments/{experiment}/runs/{run}/model-metrics")
    browser.wait_for(MLFLOW_DRAWN, what=f"{MLFLOW_CHARTS} MLflow metric charts")
    browser.evaluate(
        "const style = document.createElement('style');"
        "style.textContent = '.modebar-container { display: none !important; }';"
        "document.head.appendChild(style);"
    )
    time.sleep(2)
    browser.screenshot(path)


def small_png(source: Path, target: Path) -> None:
    """256 colours: a screenshot of flat UI colours loses nothing visible and keeps a third of the bytes."""
    from PIL import Image

    with Image.open(source) as image:
        image.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT).save(target, optimize=True)
    print(f"wrote {target} ({target.stat().st_size // 1024} KB)", flush=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python scripts/screenshots.py", description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=ROOT / "docs/images", help="folder for the PNGs")
    parser.add_argument("--chromium", default="chromium", help="the Chromium to drive (default: chromium)")
    parser.add_argument(
        "--runs-root",
        type=Path,
        help=f"a runs root that already holds one {EXPERIMENT} run (and no other MLflow run of it): shoot that one"
        " instead of training",
    )
    parser.add_argument(
        "--only",
        choices=["trackers", "sweep-report"],
        help="take one picture set: the trackers' (TensorBoard, MLflow) or the sweep report's (default: both)",
    )
    args = parser.parse_args(argv)
    args.output.mkdir(parents=True, exist_ok=True)
    if args.only in (None, "sweep-report"):
        with tempfile.TemporaryDirectory(prefix="expresso-screenshots-") as tmp:
            shoot_sweep_report(Path(tmp), args.chromium, Path(tmp) / "report.png")
            small_png(Path(tmp) / "report.png", args.output / "sweep-report.png")
    if args.only == "sweep-report":
        return
    with tempfile.TemporaryDirectory(prefix="expresso-screenshots-") as tmp:
        folder = Path(tmp)
        if args.runs_root is None:
            runs = folder / "runs"
            train(runs)
        else:
            runs = args.runs_root.resolve()
        tensorboard = f"http://127.0.0.1:{free_port()}"
        mlflow = f"http://127.0.0.1:{free_port()}"
        # the commands of docs/trackers.md (run beside the runs root), bound to a free localhost port each
        tensorboard_command = [tool("tensorboard"), "--logdir", f"{runs.name}/"]
        mlflow_command = [tool("mlflow"), "ui", "--backend-store-uri", f"sqlite:///{runs.name}/mlflow.db"]
        with (
            server(
                [*tensorboard_command, "--host", "127.0.0.1", "--port", tensorboard.rsplit(":", 1)[1]],
                runs.parent,
                f"{tensorboard}/data/plugin/scalars/tags",
                folder / "tensorboard.log",
            ),
            server(
                [*mlflow_command, "--host", "127.0.0.1", "--port", mlflow.rsplit(":", 1)[1]],
                runs.parent,
                f"{mlflow}/health",
                folder / "mlflow.log",
            ),
        ):
            browser = Browser(args.chromium, WIDTH, HEIGHT)
            try:
                shoot_tensorboard(browser, tensorboard, folder / "tensorboard.png")
                shoot_mlflow(browser, mlflow, folder / "mlflow.png")
            finally:
                browser.close()
        small_png(folder / "tensorboard.png", args.output / "tensorboard_scalars.png")
        small_png(folder / "mlflow.png", args.output / "mlflow_metrics.png")


if __name__ == "__main__":
    main()
