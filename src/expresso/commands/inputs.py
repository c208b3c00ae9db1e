"""``expresso predict --input FILE``: reading a file of raw inputs and turning them into what the model reads.

A run's model reads what its dataset's samples hold (for the digits, images
scaled to [0, 1]), while a file of new inputs holds them as they were stored
(pixel values 0-16). Feeding those to the model unchanged would predict on
data the model never saw, silently. So the training split's dataset turns
them into its samples' form with its ``prepare_inputs(raw)`` method; a
dataset without one that visibly transforms its samples (a ``transform``
attribute, torchvision's convention) is refused, since the inputs would skip
that transform; any other dataset gets the inputs as given (reshaped to its
samples' shape), and the command says so. ``--inputs-prepared`` declares the
file to hold the model's form already.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path
from typing import Any

from . import UsageError

SUFFIXES = (".npy", ".csv", ".pt")


def model_inputs(path: Path, dataset: Any, prepared: bool) -> tuple[Any, str]:
    """The tensor the model reads for the inputs in ``path``, and how it was made (for the command's output line).

    ``dataset`` is the training split's dataset (None without one): it names
    the samples' shape and may define ``prepare_inputs``.
    """
    raw = read_inputs(path)
    sample = _sample(dataset)
    name = type(dataset).__name__
    prepare = getattr(dataset, "prepare_inputs", None)
    if prepared:
        return _shaped(raw, sample, path), "inputs used as given: --inputs-prepared"
    if callable(prepare):
        return _prepare(prepare, raw, sample, path, name), f"inputs prepared by {name}.prepare_inputs"
    if getattr(dataset, "transform", None) is not None:
        raise UsageError(
            f"{path}: the run's dataset {name} transforms its samples (its `transform` is set) and defines no prepare_inputs(raw), "
            "so these inputs would reach the model without that transform; define prepare_inputs(raw) on the dataset to apply it, "
            "or pass inputs already in the model's form with --inputs-prepared"
        )
    return _shaped(raw, sample, path), f"inputs used as given: {name} defines no prepare_inputs"


def read_inputs(path: Path):
    """A float tensor, one sample per row of the first dimension, from a .npy, .csv or .pt file."""
    import numpy as np
    import torch

    if not path.is_file():
        raise UsageError(f"{path}: input file not found")
    if path.suffix not in SUFFIXES:
        raise UsageError(f"{path}: unsupported input type {path.suffix!r}; expected .npy, .csv or .pt")
    if path.stat().st_size == 0:  # each reader below has its own words (or none: EOFError) for an empty file
        raise UsageError(f"{path}: holds no inputs; expected one sample per row")
    if path.suffix == ".pt":
        return _checked(_load_pt(path), path)
    if path.suffix == ".npy" and _head(path) != b"\x93NUMPY":  # numpy takes any other file for a pickle
        raise UsageError(
            f"{path}: cannot read inputs: not a .npy file (no NUMPY header); expected an array saved with numpy.save"
        )
    try:
        if path.suffix == ".npy":
            tensor = torch.from_numpy(np.load(path, allow_pickle=False))
        elif path.suffix == ".csv":
            with warnings.catch_warnings():  # an empty file: numpy warns, then it is refused below in one line
                warnings.simplefilter("ignore", UserWarning)
                tensor = torch.from_numpy(
                    np.loadtxt(path, delimiter=",", ndmin=2, skiprows=1 if _has_header(path) else 0)
                )
    except (ValueError, OSError, RuntimeError) as exc:  # a UnicodeDecodeError (a binary .csv) is a ValueError
        raise UsageError(f"{path}: cannot read inputs ({_npy_reason(exc)})") from None
    return _checked(tensor, path)


def _load_pt(path: Path) -> Any:
    """What a .pt file holds, read as tensors and plain data only: a pickle that would build other objects (run code) is refused unread."""
    import torch

    try:
        with warnings.catch_warnings():
            warnings.simplefilter(
                "ignore"
            )  # torch warns about pickle protocols before refusing: the refusal is the line
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - on a damaged file torch.load raises anything (EOFError, IndexError, KeyError...)
        text, kind = str(exc).strip(), exc
    # torch's advice (weights_only=False) would let the file run code: never repeated. Bytes its unpickler has
    # no operation for are no pickle of objects, just not torch.save's.
    if "Weights only load failed" in text and "Unsupported operand" not in text:
        named = re.search(r"GLOBAL (\S+)", text)
        raise UsageError(
            f"{path}: holds objects other than tensors and plain data{f' ({named[1]})' if named else ''}, "
            "so it was not loaded; expected a tensor saved with torch.save"
        )
    # torch's own words where it has some (a damaged zip archive); an IndexError or KeyError from its legacy reader says nothing
    reason = f" ({text.splitlines()[0]})" if isinstance(kind, RuntimeError) and text else ""
    raise UsageError(
        f"{path}: cannot read inputs: not a file torch.save wrote{reason}; expected a tensor saved with torch.save"
    )


def _npy_reason(exc: Exception) -> str:
    """numpy's words, less its advice to unpickle (allow_pickle=True would let the file run code)."""
    text = str(exc).splitlines()[0]
    if "allow_pickle" in text:  # an array of Python objects
        return "not a numeric array: it holds Python objects, which are never unpickled"
    return text


def _checked(tensor: Any, path: Path):
    """``tensor`` as floats, if it is a tensor with at least one row."""
    import torch

    if not isinstance(tensor, torch.Tensor):
        raise UsageError(f"{path}: expected a tensor, found {type(tensor).__name__}")
    if tensor.ndim == 0 or len(tensor) == 0:
        raise UsageError(f"{path}: holds no inputs; expected one sample per row")
    return tensor.float()


def _head(path: Path) -> bytes:
    with path.open("rb") as handle:
        return handle.read(6)


def _has_header(path: Path) -> bool:
    """A first line that is not all numbers names the columns."""
    with path.open(encoding="utf-8") as handle:
        first = handle.readline()
    try:
        [float(cell) for cell in first.split(",")]
    except ValueError:
        return bool(first.strip())
    return False


def _sample(dataset: Any):
    if dataset is None:
        return None
    try:
        return dataset[0][0]
    except Exception:  # noqa: BLE001 - a dataset whose items are not (input, ...) pairs: no shape to follow
        return None


def _shaped(tensor, sample: Any, path: Path):
    """``tensor`` reshaped to the samples' shape where its rows hold as many values."""
    import torch

    if isinstance(sample, torch.Tensor) and tensor.shape[1:] != sample.shape:
        if tensor[0].numel() != sample.numel():
            raise UsageError(
                f"{path}: each input has {tensor[0].numel()} values; the model's data has shape {tuple(sample.shape)}"
            )
        tensor = tensor.reshape(len(tensor), *sample.shape)
    return tensor


def _prepare(prepare, raw, sample: Any, path: Path, name: str):
    """``dataset.prepare_inputs(raw)``, checked: a tensor with a row per input, shaped like the samples."""
    import torch

    try:
        prepared = prepare(raw)
    except ValueError as exc:  # the dataset's way of saying the inputs are not what it expects
        raise UsageError(f"{path}: {exc}") from None
    if not isinstance(prepared, torch.Tensor):
        raise UsageError(f"{path}: {name}.prepare_inputs returned {type(prepared).__name__}; expected a tensor")
    if len(prepared) != len(raw):
        raise UsageError(f"{path}: {name}.prepare_inputs returned {len(prepared)} rows for {len(raw)} inputs")
    if isinstance(sample, torch.Tensor) and prepared.shape[1:] != sample.shape:
        raise UsageError(
            f"{path}: {name}.prepare_inputs returned inputs of shape {tuple(prepared.shape[1:])}; the dataset's samples have shape {tuple(sample.shape)}"
        )
    return prepared
