"""Which device to train on, and moving batches there without stalling the host."""

from __future__ import annotations

from typing import Any

import torch


def _mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return mps is not None and mps.is_available()


def device_problem(name: str) -> str | None:
    """Why ``trainer.device`` names a device this machine lacks, or None: what ``--check`` reports and ``resolve_device`` refuses."""
    if name == "auto":
        return None
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        return f"received {name!r}, but this machine has no CUDA device; use auto or cpu"
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        return f"received {name!r}, but this machine has {torch.cuda.device_count()} CUDA device(s) (cuda:0 to cuda:{torch.cuda.device_count() - 1})"
    if device.type == "mps" and not _mps_available():
        return f"received {name!r}, but this machine has no MPS device (Apple silicon); use auto or cpu"
    return None


def resolve_device(name: str) -> torch.device:
    """``auto`` is CUDA when present, then Apple's MPS, else the CPU; others are checked (``device_problem``)."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    problem = device_problem(name)
    if problem is not None:
        raise ValueError(f"trainer.device: {problem}")
    return torch.device(name)


def move(value: Any, device: torch.device, non_blocking: bool) -> Any:
    """Tensors in (nested) dicts, lists and tuples, moved; non_blocking needs pinned memory."""
    if isinstance(value, torch.Tensor):
        return value.to(device, non_blocking=non_blocking)
    if isinstance(value, dict):
        return {k: move(v, device, non_blocking) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(move(v, device, non_blocking) for v in value)
    return value
