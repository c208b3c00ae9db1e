"""The training cases: what each one trains, defined once, importable without torch.

The hand loop and the peers build a case through ``workload.py``; expresso
reads the same settings from the config file each case names (in
``benchmarks/expresso_configs/``). The final validation accuracies in the
report prove they agree: with the same init, data order and one thread the
arithmetic is identical, so every framework ends on the same accuracy.
The parent process of the benchmark imports this module, never torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = "benchmarks/expresso_configs"
# Every case of `python -m benchmarks`, in the order they run and the report shows them (__main__.py says what each is).
ALL = (
    "imports",
    "mlp",
    "cnn",
    "job",
    "data",
    "trackers",
    "checkpoint",
    "compile",
    "phases",
    "cli",
    "epoch",
    "attribution",
)
PROBE_FILE = "fit_timer.json"  # what probe.FitTimer writes into the run folder (probe.py repeats it: see there)


@dataclass(frozen=True)
class Case:
    name: str
    title: str
    model: (
        str  # "mlp" (64-64-10), "cnn" (expresso.models.SmallCNN) or "resnet" (real_job.SmallResNet, synthetic images)
    )
    config: str  # expresso's view of the same case, relative to the repository root
    epochs: int = 10
    batch_size: int = 32
    lr: float = 1e-3
    seed: int = 0
    slow: bool = False  # every sample sleeps ~1 ms (benchmarks/slow_data.py)
    fits: int = 2  # fits per process: the first is cold (what `expresso train` gets), the next warm


CASES = {
    "mlp": Case("mlp", "tiny MLP 64-64-10, digits", "mlp", f"{CONFIGS}/digits_mlp.yaml"),
    "cnn": Case("cnn", "small CNN (2 conv + fc), digits", "cnn", f"{CONFIGS}/digits_cnn.yaml"),
    "job": Case(
        "job",
        "small ResNet, synthetic 3x32x32 images (a real job)",
        "resnet",
        f"{CONFIGS}/synthetic_resnet.yaml",
        epochs=5,
        batch_size=64,
        fits=1,
    ),
    "data": Case(
        "data",
        "data-bound MLP, ~1 ms per sample",
        "mlp",
        f"{CONFIGS}/slow_digits_mlp.yaml",
        epochs=2,
        slow=True,
        fits=1,
    ),
}
