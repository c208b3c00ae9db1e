"""expresso.callbacks and expresso.loggers export every public class their modules define, and nothing else."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest

import expresso.callbacks
import expresso.loggers


def public_classes(package) -> set[str]:
    """The public classes defined in the package's public modules (not the ones they import)."""
    names = set()
    for module_info in pkgutil.iter_modules(package.__path__):
        if module_info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{package.__name__}.{module_info.name}")
        names |= {
            name
            for name, value in vars(module).items()
            if inspect.isclass(value) and value.__module__ == module.__name__ and not name.startswith("_")
        }
    return names


def test_every_public_callback_class_and_error_is_exported():
    # Summary is ModelSummary's table of counts (a value, not a callback): imported from its module.
    # NonFiniteLossError, NaNGuard's error, is the engine's (its default check raises it too): exported here as well.
    assert set(expresso.callbacks.__all__) == public_classes(expresso.callbacks) - {"Summary"} | {"NonFiniteLossError"}


def test_every_public_logger_class_is_exported():
    assert (
        set(expresso.loggers.__all__)
        == public_classes(expresso.loggers)
        == {
            "ClearMLLogger",
            "CometLogger",
            "Logger",
            "MLflowLogger",
            "SacredLogger",
            "TensorBoardLogger",
            "WandbLogger",
        }
    )


@pytest.mark.parametrize("package", [expresso.callbacks, expresso.loggers], ids=lambda p: p.__name__)
def test_every_exported_name_is_importable_from_the_package(package):
    assert all(inspect.isclass(getattr(package, name)) for name in package.__all__)
