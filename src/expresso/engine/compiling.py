"""``trainer.compile``: torch.compile of each model, and its failures said in one line naming the model.

torch compiles a model at its first call, not at ``torch.compile``: a
machine without a C++ compiler for inductor, an unsupported Python or an
operation dynamo cannot trace fails there, deep in torch's stack. The graph
turns such a failure into a ``CompileError`` (bad input: the fix is
``trainer.compile: false``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import torch
from torch import nn

from ..errors import BadInput


class CompileError(BadInput, RuntimeError):
    """``torch.compile`` cannot compile a model here (no C++ compiler, an unsupported Python or operation).

    One line, before a run folder exists when torch refuses at once; a run
    that fails at the first compiled call records it and exits 1, in one line too.
    """


def compile_models(models: Mapping[str, nn.Module], mode: str | None) -> dict[str, Callable]:
    """Each model through ``torch.compile`` (its ``mode``); a refusal at once (an unsupported Python) is a CompileError."""
    try:
        return {name: torch.compile(model, mode=mode) for name, model in models.items()}
    except RuntimeError as exc:
        raise CompileError(compile_failed(None, exc)) from exc


def from_compiler(exc: BaseException) -> bool:
    """Whether ``exc`` comes from torch's compiler (dynamo, inductor), not from the model's own code."""
    return type(exc).__module__.startswith(("torch._dynamo", "torch._inductor"))


def compile_failed(model: str | None, exc: BaseException) -> str:
    """One line: which model torch.compile failed on, torch's reason (its first line) and the way out."""
    reason = next((line.strip() for line in str(exc).splitlines() if line.strip()), type(exc).__name__)
    which = f" on model {model!r}" if model is not None else ""
    return f"trainer.compile: torch.compile failed{which} ({reason}); set trainer.compile: false to train without compiling"
