"""The check ``expresso config --check`` prints and ``expresso train`` runs first, up to what only torch can tell.

The config layer checks what it can without torch (config/check.py: every
class imported, every argument against its signature). What needs the
engine comes here, once that holds: the device exists on this machine, and
the graph's wiring (a cycle, a tensor nobody writes, a monitor no metric
matches) holds, checked with placeholder models (placeholder.py): nothing is
built.
"""

from __future__ import annotations

from ..config import Config, ConfigError, Problem
from ..engine.devices import device_problem
from ..engine.distributed import problems as distribution_problems
from ..engine.graph import GraphError
from .blame import wiring_problem
from .monitored import monitor_problems
from .placeholder import placeholder_plans


def check(config: Config) -> Config:
    """``config`` checked as ``expresso train`` checks it (signatures, then device and wiring); raises ConfigError.

    Returns the checked config (task values injected); a config this
    function passed once is not checked again.
    """
    if config.wired:
        return config
    config = config.check()
    problems = wiring_problems(config)
    if problems:
        raise ConfigError(problems)
    config.wired = True
    return config


def wiring_problems(config: Config) -> list[Problem]:
    """The device, then the wiring with placeholder models; once the wiring holds, every monitor against the metric
    names its plans record."""
    device = device_problem(config["trainer"]["device"])
    problems = [Problem(config.where(("trainer", "device")), "trainer.device", device)] if device else []
    problems += [  # trainer.devices/strategy against this machine and each other
        Problem(config.where(tuple(key.split("."))), key, message)
        for key, message in distribution_problems(config["trainer"])
    ]
    w = config.wiring
    try:
        plans = placeholder_plans(config, w)
    except GraphError as exc:
        return problems + [wiring_problem(exc, w, config.where)]
    return problems + monitor_problems(config, config.where, w, plans)
