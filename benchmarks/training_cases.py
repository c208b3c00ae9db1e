"""Runs a training case through every framework, alternating, one process per run.

Round after round, each variant runs once in a fixed order (A B C ... A B C
...), so a slow minute on a shared machine hits every framework alike and
each round pairs every run with a hand-loop run made moments apart. A
warm-up run (one epoch, discarded) first fills the page and bytecode caches
for each framework. ``import torch`` alone runs in the rotation too: it is
the start-up floor that the time to the first step is measured against.

What one run records: the fit times (the first cold, then warm), the time
from launching the process to the first optimizer step, the process's peak
RSS and the final validation accuracy.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import shutil
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

from expresso.heap import MMAP_THRESHOLD, TRIM_THRESHOLD

from . import launch
from .cases import PROBE_FILE, Case

PEER_MODULES = {
    "lightning-defaults": "lightning",
    "lightning-minimal": "lightning",
    "ignite": "ignite",
    "accelerate": "accelerate",
}
INSTALL_HINT = "pip install -c constraints.txt -e '.[bench]'"


@dataclass(frozen=True)
class Variant:
    label: str  # the report's row name
    framework: str  # import-torch, hand, expresso-cli, expresso-api(-no-checkpoints), lightning-*, ignite, accelerate
    workers: int | None = None  # DataLoader num_workers; None: the framework's default
    overrides: tuple[str, ...] = ()  # expresso only: config overrides on top of the case's file
    runs_root: str | None = None  # expresso CLI only: one runs root for every run (what the runs share: mlflow.db)
    env: tuple[tuple[str, str], ...] = ()  # set in the process's environment on top of launch.child_env()


STANDARD = [
    Variant("import torch (start-up floor)", "import-torch"),
    Variant("hand loop", "hand"),
    # The hand loop on the heap expresso fixes (src/expresso/heap.py): how much of a ratio is glibc's malloc, not work.
    Variant(
        "hand loop, expresso's heap",
        "hand",
        env=(("MALLOC_MMAP_THRESHOLD_", str(MMAP_THRESHOLD)), ("MALLOC_TRIM_THRESHOLD_", str(TRIM_THRESHOLD))),
    ),
    Variant("expresso CLI", "expresso-cli"),
    Variant("expresso API", "expresso-api"),
    Variant("expresso API, no checkpoints", "expresso-api-no-checkpoints"),  # what the per-epoch checkpoints cost
    Variant("Lightning defaults", "lightning-defaults"),
    Variant("Lightning minimal", "lightning-minimal"),
    Variant("ignite", "ignite"),
    Variant("Accelerate", "accelerate"),
]


def missing(variant: Variant) -> str | None:
    """Why a variant cannot run here (its peer is not installed), or None."""
    module = PEER_MODULES.get(variant.framework)
    if module and importlib.util.find_spec(module) is None:
        return f"{module} not installed ({INSTALL_HINT})"
    return None


def command(
    variant: Variant, case: Case, workdir: Path, epochs: int | None = None, fits: int | None = None
) -> list[str]:
    if variant.framework == "import-torch":
        return launch.python("-c", "import torch")
    if variant.framework == "expresso-cli":
        from .expresso_api import overrides

        return launch.expresso_command(
            "train",
            case.config,
            "--runs-root",
            str(_runs_root(variant, workdir)),
            *overrides(case, variant.workers, epochs),
            *variant.overrides,
        )
    args = [
        "-m",
        "benchmarks.child",
        variant.framework,
        case.name,
        "--out",
        str(workdir / "result.json"),
        "--workdir",
        str(workdir),
    ]
    if variant.workers is not None:
        args += ["--workers", str(variant.workers)]
    if epochs is not None:
        args += ["--epochs", str(epochs)]
    if fits is not None:
        args += ["--fits", str(fits)]
    for override in variant.overrides:
        args += ["--override", override]
    return launch.python(*args)


def _runs_root(variant: Variant, workdir: Path) -> Path:
    return Path(variant.runs_root) if variant.runs_root else workdir / "runs"


def run_once(variant: Variant, case: Case, workdir: Path, epochs: int | None = None, fits: int | None = None) -> dict:
    """One measured process; the result says what went wrong instead of raising."""
    workdir.mkdir(parents=True, exist_ok=True)
    done = launch.run(command(variant, case, workdir, epochs, fits), workdir / "output.log", dict(variant.env))
    result = {"wall_s": done.seconds, "peak_rss_mb": done.peak_rss_mb, "fits": [], "first_step_s": None, "error": None}
    try:
        if done.returncode != 0:
            raise RuntimeError(f"exit status {done.returncode}")
        if variant.framework == "expresso-cli":
            probes = list(_runs_root(variant, workdir).glob(f"*/*/{PROBE_FILE}"))
            if len(probes) != 1:
                raise RuntimeError(f"expected one {PROBE_FILE} under the runs root, found {len(probes)}")
            result["fits"] = [json.loads(probes[0].read_text())]
            if variant.runs_root:  # the next run finds only its own probe; what the runs share stays
                shutil.rmtree(probes[0].parent)
        elif variant.framework != "import-torch":
            result["fits"] = json.loads((workdir / "result.json").read_text())["fits"]
    except Exception as exc:  # a broken framework run is reported, the session goes on
        result["error"] = f"{exc}; last output lines:\n{done.tail()}"
    if result["fits"] and result["fits"][0].get("first_step_at"):
        result["first_step_s"] = result["fits"][0]["first_step_at"] - done.launched_at
    return result


def run_case(case: Case, variants: list[Variant], rounds: int, scratch: Path, warmed: set[str]) -> dict:
    """Alternating rounds over the variants that can run; returns everything the report needs."""
    runnable = [v for v in variants if not missing(v)]
    skipped = {v.label: missing(v) for v in variants if missing(v)}
    for variant in runnable:
        key = f"{variant.framework}:{variant.workers}:{variant.overrides}:{variant.env}"
        if key not in warmed:
            _progress(f"{case.name}: warm-up {variant.label}")
            run_once(variant, case, scratch / "warm-up" / _slug(variant), epochs=1, fits=1)
            warmed.add(key)
    runs: dict[str, list[dict]] = {v.label: [] for v in runnable}
    for index in range(rounds):
        for variant in runnable:
            workdir = scratch / case.name / f"round-{index}" / _slug(variant)
            result = run_once(variant, case, workdir)
            runs[variant.label].append(result)
            shutil.rmtree(workdir, ignore_errors=True)  # checkpoints and run folders add up
            fit = f"{result['fits'][0]['seconds']:.3f} s fit" if result["fits"] else ""
            _progress(
                f"{case.name}: round {index + 1}/{rounds} {variant.label:32} {result['wall_s']:6.2f} s process {fit}"
                + (" FAILED" if result["error"] else "")
            )
    return {
        "case": asdict(case),
        "rounds": rounds,
        "variants": [asdict(v) for v in runnable],
        "skipped": skipped,
        "runs": runs,
    }


def _slug(variant: Variant) -> str:
    varied = (variant.overrides, variant.env) if variant.env else variant.overrides
    extra = "-" + hashlib.sha1(repr(varied).encode()).hexdigest()[:8] if varied else ""
    return variant.framework + ("" if variant.workers is None else f"-w{variant.workers}") + extra


def _progress(line: str) -> None:
    print(f"  .. {line}", file=sys.stderr, flush=True)
