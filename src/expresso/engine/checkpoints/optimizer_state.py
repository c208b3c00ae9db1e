"""Does a saved optimizer state have the shape this optimizer needs? Checked before it is loaded.

``Optimizer.load_state_dict`` checks the number of groups and parameters but
not the keys: a checkpoint whose key ``exp_avg_sq`` lost a bit (one flipped
byte in a folder from before manifests, where nothing else can catch it)
loads silently and fails later, inside ``step()``, with a bare KeyError.
This asks the optimizer's own class which keys it keeps: a throwaway copy
takes one step on a one-element parameter with the same group settings.
Optimizers that cannot be probed that way (LBFGS needs a closure, a custom
class may need arguments) are not checked.
"""

from __future__ import annotations

from typing import Any

import torch


def state_problem(optimizer: torch.optim.Optimizer, saved: Any) -> str | None:
    """What about ``saved`` would break ``optimizer``, in one line; None if nothing is seen."""
    if (
        not isinstance(saved, dict)
        or not isinstance(saved.get("param_groups"), list)
        or not isinstance(saved.get("state"), dict)
    ):
        return "an optimizer state needs 'state' (a dict) and 'param_groups' (a list)"
    groups = saved["param_groups"]
    if len(groups) != len(optimizer.param_groups) or not all(
        isinstance(g, dict) and isinstance(g.get("params"), list) for g in groups
    ):
        return None  # torch's own check names the mismatch
    live_of: dict[
        Any, tuple[int, torch.Tensor]
    ] = {}  # saved index -> (group number, live parameter), paired by position as torch does
    for number, (live, group) in enumerate(zip(optimizer.param_groups, groups)):
        missing = sorted(set(live) - set(group) - {"params", "param_names"})
        if missing:
            return f"a parameter group lacks {missing} (it has {sorted(map(str, group))})"
        for index, parameter in zip(group["params"], live["params"]):
            live_of[_hashable(index)] = (number, parameter)
    expected: dict[tuple[int, int], set[str] | None] = {}
    for index, entry in saved["state"].items():
        found = live_of.get(_hashable(index))
        if found is None or not isinstance(entry, dict):
            continue  # torch reports what does not pair up
        number, parameter = found
        key = (number, parameter.dim())
        if key not in expected:
            expected[key] = _state_keys(type(optimizer), groups[number], parameter.dim())
        keeps = expected[key]
        if keeps is not None and set(map(str, entry)) != keeps:
            return f"the state of parameter {index!r} has keys {sorted(map(str, entry))}, {type(optimizer).__name__} keeps {sorted(keeps)}"
    return None


def _hashable(value: Any) -> Any:
    try:
        hash(value)
    except TypeError:
        return repr(value)
    return value


# Settings that pick an implementation (and may need a GPU), not what is kept: the probe runs the plain CPU one.
IMPLEMENTATION_SETTINGS = ("params", "param_names", "foreach", "fused", "capturable", "differentiable")


def _state_keys(kind: type, group: dict, dims: int) -> set[str] | None:
    """The state keys ``kind`` keeps for a ``dims``-dimensional parameter with ``group``'s settings; None if it cannot be asked."""
    settings = {key: value for key, value in group.items() if key not in IMPLEMENTATION_SETTINGS}
    try:
        probe = torch.zeros((1,) * dims, requires_grad=True)
        throwaway = kind([probe])
        throwaway.param_groups[0].update(settings)
        probe.grad = torch.zeros_like(probe)
        throwaway.step()
        return {str(key) for key in throwaway.state[probe]}
    except Exception:  # noqa: BLE001 - an optimizer that cannot take this probe step is simply not checked
        return None
