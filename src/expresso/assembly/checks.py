"""The check ``expresso config --check`` prints and ``expresso train`` runs first, up to what only torch can tell.

The config layer checks what it can without torch (config/check.py: every
class imported, every argument against its signature). What needs the
engine comes here, once that holds: the device exists on this machine, and
the graph's wiring (a cycle, a tensor nobody writes, a monitor no metric
matches) holds, checked with placeholder models (placeholder.py), and the
step's settings fit the device and the graph (step_problems): nothing is
built.
"""

from __future__ import annotations

from ..config import Config, ConfigError, Problem
from ..engine.devices import device_problem, resolve_device
from ..engine.distributed import problems as distribution_problems
from ..engine.graph import GraphError
from ..engine.stepping import accumulation_problem, clip_conflict, precision_problem
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
    steps = step_problems(config, {name: len(plan.steps) for name, plan in plans.items()}, device is None)
    return problems + steps + monitor_problems(config, config.where, w, plans)


def step_problems(config: Config, updates: dict[str, int], device_exists: bool) -> list[Problem]:
    """trainer.precision on this device, accumulation against pipelines of several updates, clipping given twice."""
    trainer = config["trainer"]

    def problem(key: str, message: str) -> Problem:
        return Problem(config.where(("trainer", key)), f"trainer.{key}", message)

    problems = []
    if device_exists and (found := precision_problem(trainer["precision"], resolve_device(trainer["device"]))):
        problems.append(problem("precision", found))
    if found := accumulation_problem(trainer["accumulate_grad_batches"], updates):
        problems.append(problem("accumulate_grad_batches", found))
    optimizers = config.to_dict().get("optimizers") or {}
    own = [
        name
        for name, node in optimizers.items()
        if isinstance(node, dict)
        and (node.get("clip_grad_norm") is not None or node.get("clip_grad_value") is not None)
    ]
    if trainer["gradient_clip_val"] and own:
        message = clip_conflict(trainer["gradient_clip_val"], own).split(": ", 1)[1]
        problems.append(problem("gradient_clip_val", message))
    return problems
