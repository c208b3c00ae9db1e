"""Model weights as safetensors: written from a checkpoint, read back into models.

The file format (one file for every model of a run, ``<model>.<key>``
tensor names, the metadata, how tied weights are kept) is documented in
``expresso/export.py``, this module's public face: users import from there.
Writing goes through the one atomic writer, durably (a file handed to others).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NamedTuple

import torch

from ...errors import BadInput
from ...runs.atomic import atomic_write
from ...version import __version__
from .errors import CheckpointError
from .io import load_checkpoint

FORMAT = "expresso-weights"
FORMAT_VERSION = 1
SUFFIX = ".safetensors"

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "WeightsError",
    "Written",
    "checkpoint_weights",
    "export_checkpoint",
    "load_weights",
    "model_names",
    "read_metadata",
    "save_weights",
]


class WeightsError(BadInput, ValueError):
    """A weights file that cannot be written or read, or does not fit the models it is loaded into."""


class Written(NamedTuple):
    """What ``save_weights`` wrote: the file, its tensors by key (CPU, as stored), the model names and the metadata."""

    path: Path
    tensors: dict[str, torch.Tensor]
    models: list[str]
    metadata: dict[str, str]


# -- writing ---------------------------------------------------------------------------------------------
def save_weights(
    models: Mapping[str, Any], path: str | os.PathLike, metadata: Mapping[str, Any] | None = None
) -> Written:
    """Write ``models`` ({name: nn.Module or state_dict}) to ``path`` atomically.

    ``metadata`` adds string entries (values are converted with ``str``) to
    the ones this module writes (``format``, ``format_version``,
    ``expresso_version``, ``models``), which it cannot replace.
    """

    path = Path(path)
    names = [str(name) for name in models]
    tensors = flatten(models)
    entries = {str(key): str(value) for key, value in (metadata or {}).items()}
    entries.update(
        format=FORMAT, format_version=str(FORMAT_VERSION), expresso_version=__version__, models=json.dumps(names)
    )
    _write_atomic(tensors, entries, path)
    return Written(path, tensors, names, entries)


def flatten(models: Mapping[str, Any]) -> dict[str, torch.Tensor]:
    """``{"<model>.<key>": tensor}`` from {name: nn.Module or state_dict}: detached, on the CPU, contiguous, no two sharing storage."""
    names = [str(name) for name in models]
    _check_names(names)
    tensors: dict[str, torch.Tensor] = {}
    seen: set[tuple[str, int]] = set()
    for name, model in models.items():
        state = model.state_dict() if isinstance(model, torch.nn.Module) else model
        if not isinstance(state, Mapping):
            raise WeightsError(f"model {name!r}: expected a module or a state_dict, received {type(state).__name__}")
        for key, value in state.items():
            full = f"{name}.{key}"
            if not isinstance(value, torch.Tensor):
                raise WeightsError(f"{full}: cannot be stored as safetensors: a {type(value).__name__}, not a tensor")
            if value.layout != torch.strided:
                raise WeightsError(
                    f"{full}: cannot be stored as safetensors: a {value.layout} tensor (dense tensors only)"
                )
            tensor = value.detach().to("cpu").contiguous()
            storage = tensor.untyped_storage()
            if storage.nbytes() > 0:
                identity = (str(tensor.device), storage.data_ptr())
                if (
                    identity in seen
                ):  # tied weights, or views of one buffer: safetensors wants each name on its own storage
                    tensor = tensor.clone()
                    identity = (str(tensor.device), tensor.untyped_storage().data_ptr())
                seen.add(identity)
            tensors[full] = tensor
    return tensors


def _check_names(names: list[str]) -> None:
    """Model names must be unambiguous as key prefixes: ``a`` and ``a.b`` would both own ``a.b.weight``."""
    for name in names:
        if not name:
            raise WeightsError("a model name is empty")
        clash = [other for other in names if other != name and other.startswith(name + ".")]
        if clash:
            raise WeightsError(f"model names {name!r} and {clash[0]!r}: a key '{clash[0]}.…' would belong to both")


def _write_atomic(tensors: dict[str, torch.Tensor], metadata: dict[str, str], path: Path) -> None:
    """The file's bytes in memory (safetensors writes a whole file), then the one atomic writer, durably."""
    from safetensors.torch import save

    atomic_write(path, save(tensors, metadata=metadata), durable=True)


def export_checkpoint(
    checkpoint: str | os.PathLike, output: str | os.PathLike, *, experiment: str | None = None
) -> Written:
    """Every model of an expresso checkpoint (read with ``weights_only=True``) to one safetensors file at ``output``.

    ``experiment`` defaults to the name in the checkpoint's config. Raises
    ``CheckpointError`` (naming the file) for a missing, unreadable or
    foreign checkpoint, before anything is written.
    """
    models, metadata = checkpoint_weights(checkpoint, experiment=experiment)
    return save_weights(models, output, metadata)


def checkpoint_weights(
    checkpoint: str | os.PathLike, *, experiment: str | None = None
) -> tuple[dict[str, Any], dict[str, str]]:
    """A checkpoint's ``{model name: state_dict}`` and the metadata an export of it records (its name, loop position, experiment)."""
    checkpoint = Path(checkpoint)
    payload = load_checkpoint(checkpoint, map_location="cpu")
    models = payload.get("models")
    if (
        not isinstance(models, Mapping)
        or not models
        or not all(isinstance(state, Mapping) for state in models.values())
    ):
        found = (
            "an empty 'models'"
            if isinstance(models, Mapping) and not models
            else f"'models' is {type(models).__name__}"
        )
        raise CheckpointError(f"{checkpoint}: holds no model weights ({found})")
    loop = payload.get("loop")
    loop = loop if isinstance(loop, Mapping) else {}
    config = payload.get("config")
    config = config if isinstance(config, Mapping) else {}
    metadata = {
        "experiment": experiment if experiment is not None else str(config.get("name", "")),
        "checkpoint": checkpoint.name,
    }
    metadata.update({key: str(loop[key]) for key in ("epoch", "step", "batch_index") if key in loop})
    return dict(models), metadata


# -- reading ---------------------------------------------------------------------------------------------
def read_metadata(path: str | os.PathLike) -> dict[str, str]:
    """The file's safetensors metadata (string -> string, as written; ``models`` is a JSON list)."""
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"{path}: weights file not found")
    try:
        with safe_open(str(path), framework="pt") as handle:
            return dict(handle.metadata() or {})
    except Exception as exc:  # safetensors raises its own error type for a bad header
        raise WeightsError(f"{path}: not a readable safetensors file ({_first_line(exc)})") from None


def model_names(path: str | os.PathLike, metadata: Mapping[str, str] | None = None) -> list[str]:
    """The names of the models an expresso weights file holds (checks that it is one)."""
    metadata = read_metadata(path) if metadata is None else metadata
    if metadata.get("format") != FORMAT:
        raise WeightsError(f"{path}: not an expresso weights file (no format '{FORMAT}' in its metadata)")
    version = metadata.get("format_version", "")
    if not version.isdigit() or int(version) > FORMAT_VERSION:
        raise WeightsError(f"{path}: format version {version!r}; this expresso reads up to {FORMAT_VERSION}")
    try:
        names = json.loads(metadata.get("models", ""))
    except ValueError:
        names = None
    if not isinstance(names, list) or not all(isinstance(name, str) for name in names):
        raise WeightsError(f"{path}: the metadata's 'models' is not a JSON list of names: {metadata.get('models')!r}")
    return names


def load_weights(path: str | os.PathLike, models: Any, *, strict: bool = True) -> dict[str, str]:
    """Load an exported file into ``models``: one ``nn.Module`` (a single-model file) or {name: nn.Module}.

    Tensors are read with ``safetensors.torch.load_file`` and copied in with
    ``load_state_dict``. With ``strict`` (the default) every key of every
    given model must be in the file and every tensor of the file must be
    used: a file model that was not given, a missing or unexpected key, or a
    shape that differs raises ``WeightsError`` naming the file and the keys
    (as the file names them, ``<model>.<key>``), before any model is
    changed. ``strict=False`` loads what matches (a model name the file
    lacks is still an error). Returns the file's metadata.
    """
    from safetensors.torch import load_file

    path = Path(path)
    metadata = read_metadata(path)
    names = model_names(path, metadata)
    if isinstance(models, torch.nn.Module):
        if len(names) != 1:
            raise WeightsError(f"{path}: holds {len(names)} models ({', '.join(names)}); pass a dict of name -> module")
        targets = {names[0]: models}
    elif isinstance(models, Mapping) and all(isinstance(model, torch.nn.Module) for model in models.values()):
        targets = dict(models)
    else:
        raise WeightsError(
            f"load_weights: expected an nn.Module or a dict of name -> nn.Module, received {type(models).__name__}"
        )
    absent = [name for name in targets if name not in names]
    if absent:
        raise WeightsError(
            f"{path}: no weights for model(s) {', '.join(map(repr, absent))}; the file has {', '.join(map(repr, names))}"
        )
    try:
        tensors = load_file(str(path), device="cpu")
    except Exception as exc:
        raise WeightsError(f"{path}: cannot read the tensors ({_first_line(exc)})") from None

    owner = _owners(tensors, names)
    problems: list[str] = []
    ungiven = [name for name in names if name not in targets]
    if strict and ungiven:
        problems.append(f"models in the file but not given: {', '.join(ungiven)}")
    missing: list[str] = []
    unexpected = [key for key, name in owner.items() if name is None] if strict else []
    shapes: list[str] = []
    states: dict[str, dict[str, torch.Tensor]] = {}
    for name, module in targets.items():
        state = {key[len(name) + 1 :]: tensors[key] for key, holder in owner.items() if holder == name}
        expected = module.state_dict()
        missing += [f"{name}.{key}" for key in expected if key not in state]
        unexpected += [f"{name}.{key}" for key in state if key not in expected]
        shapes += [
            f"{name}.{key} {tuple(value.shape)} in the file, {tuple(expected[key].shape)} in the model"
            for key, value in state.items()
            if key in expected and isinstance(expected[key], torch.Tensor) and value.shape != expected[key].shape
        ]
        states[name] = state
    if strict and missing:
        problems.append(f"missing keys: {', '.join(missing)}")
    if strict and unexpected:
        problems.append(f"unexpected keys: {', '.join(sorted(unexpected))}")
    if shapes:
        problems.append(f"shape mismatch: {'; '.join(shapes)}")
    if problems:
        raise WeightsError(f"{path}: does not fit the models ({'; '.join(problems)})")
    for name, module in targets.items():
        try:
            module.load_state_dict(states[name], strict=strict)
        except RuntimeError as exc:
            message = " ".join(line.strip() for line in str(exc).splitlines() if line.strip())
            raise WeightsError(f"{path}: model {name!r}: {message}") from None
    return metadata


def _owners(tensors: Mapping[str, torch.Tensor], names: list[str]) -> dict[str, str | None]:
    """Each key's model: the name it starts with (followed by a dot); None for a key of no listed model."""
    owner: dict[str, str | None] = {}
    for key in tensors:
        matches = [name for name in names if key.startswith(name + ".")]
        owner[key] = max(matches, key=len) if matches else None
    return owner


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
