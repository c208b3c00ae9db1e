"""Learning-rate schedules torch does not ship, usable anywhere a torch scheduler is.

``Piecewise`` is the "dynamic" schedule of config files: a table of epochs
and the learning rate that starts at each (``{0: 1e-3, 40: 1e-2, 60: 1e-4}``).
It only ever *sets* the learning rate at a listed epoch and leaves it alone in
between, so a torch scheduler applied after it (StepLR, ExponentialLR...)
keeps shaping the learning rate from the value it set.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from typing import Any

import torch
from torch.optim.lr_scheduler import LRScheduler


class Piecewise(LRScheduler):
    """Sets every param group's learning rate to ``values[e]`` when epoch ``e`` begins.

    Keys are epochs (ints, or strings of ints as JSON object keys must be);
    values are positive learning rates. An epoch not in ``values`` keeps the
    current learning rate. "Epoch" is the scheduler's own step count: stepped
    per optimizer step (``interval: step``), the keys count steps.
    """

    def __init__(self, optimizer: torch.optim.Optimizer, values: Mapping[Any, Any], last_epoch: int = -1):
        self.values = _checked(values)
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float | torch.Tensor]:
        value = self.values.get(self.last_epoch)
        if value is None:
            return [group["lr"] for group in self.optimizer.param_groups]
        return [value for _ in self.optimizer.param_groups]

    def state_dict(self) -> dict[str, Any]:
        # The table is configuration, not state: a resumed run follows its config's table.
        return {key: value for key, value in super().state_dict().items() if key != "values"}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        super().load_state_dict({key: value for key, value in state_dict.items() if key != "values"})


def _checked(values: Mapping[Any, Any]) -> dict[int, float]:
    if not isinstance(values, Mapping):
        raise ValueError(
            f"Piecewise `values` must map epochs to learning rates, e.g. {{0: 1.0e-3, 40: 1.0e-4}}. Received: values={values!r}"
        )
    table: dict[int, float] = {}
    for key, value in values.items():
        epoch = _epoch(key)
        if epoch is None:
            raise ValueError(f"Piecewise `values` keys must be epochs (integers >= 0). Received: {key!r}: {value!r}")
        if epoch in table:
            raise ValueError(f"Piecewise `values` lists epoch {epoch} twice. Received: {key!r}: {value!r}")
        if isinstance(value, str):
            raise ValueError(
                f"Piecewise `values` must be positive numbers; epoch {key!r} has the string {value!r} "
                "(YAML reads 1e-3 as a string: write 1.0e-3)"
            )
        if (
            isinstance(value, bool)
            or not isinstance(value, numbers.Real)
            or not (math.isfinite(value) and float(value) > 0)
        ):
            raise ValueError(f"Piecewise `values` must be positive numbers. Received: {key!r}: {value!r}")
        table[epoch] = float(value)
    return table


def _epoch(key: Any) -> int | None:
    if isinstance(key, bool):
        return None
    if isinstance(key, numbers.Integral):
        return int(key) if int(key) >= 0 else None
    text = key.strip() if isinstance(key, str) else ""
    if text.isascii() and text.isdigit():  # no sign, no decimal point
        return int(text)
    return None
