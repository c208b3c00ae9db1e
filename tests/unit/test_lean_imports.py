"""The ``expresso`` command imports torchmetrics without matplotlib.pyplot and scipy.signal (expresso/lean_imports.py)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

from expresso import lean_imports

# Run in a fresh interpreter: this test process may have imported torchmetrics already.
CHILD = textwrap.dedent(
    """
    import sys
    from expresso import lean_imports
    from lightning_utilities.core import imports

    original = imports.package_available
    lean_imports.install()
    import torch
    import torchmetrics
    from torchmetrics.classification import MulticlassAccuracy

    print("skipped:", [name for name in ("matplotlib.pyplot", "scipy.signal") if name not in sys.modules])
    print("restored:", imports.package_available is original, torchmetrics.package_available is original)
    print("finder gone:", not any(type(f).__module__ == "expresso.lean_imports" for f in sys.meta_path))
    print("source:", "_MATPLOTLIB_AVAILABLE" in torchmetrics.utilities.imports.__loader__.get_source(
        "torchmetrics.utilities.imports"))
    metric = MulticlassAccuracy(num_classes=3)
    metric.update(torch.tensor([0, 1, 2, 2]), torch.tensor([0, 1, 1, 2]))
    print("accuracy:", round(metric.compute().item(), 4))
    try:
        metric.plot()
    except ModuleNotFoundError as exc:
        print("plot:", "matplotlib" in str(exc))
    """
)


def test_torchmetrics_loads_without_its_plotting_and_audio_extras_and_computes_as_before():
    env = {key: value for key, value in os.environ.items() if key != "EXPRESSO_FULL_TORCHMETRICS"}
    result = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, env=env, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "skipped: ['matplotlib.pyplot', 'scipy.signal']",
        "restored: True True",
        "finder gone: True",
        "source: True",
        "accuracy: 0.8333",  # macro: the mean of the classes' recalls 1, 1/2 and 1 (sklearn's balanced accuracy)
        "plot: True",  # torchmetrics' own error, as on a machine without matplotlib
    ]


def test_the_environment_variable_keeps_torchmetrics_whole(monkeypatch):
    monkeypatch.setenv("EXPRESSO_FULL_TORCHMETRICS", "1")
    lean_imports.install()
    assert not any(isinstance(finder, lean_imports._Finder) for finder in sys.meta_path)
