"""``expresso predict RUN_DIR``: a run's model on a split or a file of raw inputs; writes its predictions as .csv or .npy."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ..runs.folder import RunFolder
from . import UsageError
from .trained import load_trained


def add_parser(subparsers: argparse._SubParsersAction, common: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser = subparsers.add_parser("predict", parents=[common], help="write a run's predictions for a split or a file")
    parser.add_argument("run_dir", metavar="RUN_DIR")
    parser.add_argument("--checkpoint", default="best", help="best, last or a path (default: best)")
    parser.add_argument(
        "--input",
        help="raw inputs, one sample per row, as .npy, .csv or .pt; the training dataset's prepare_inputs(raw) turns them into what "
        "the model reads (default: predict the dataset's --split)",
    )
    parser.add_argument(
        "--inputs-prepared",
        action="store_true",
        help="the --input file already holds what the model reads: no prepare_inputs",
    )
    parser.add_argument("--split", choices=("train", "val", "test"), default="test")
    parser.add_argument("--output", help=".csv or .npy (default: RUN_DIR/predictions-<input>.csv)")
    parser.add_argument(
        "extra",
        nargs="*",
        metavar="KEY=VALUE",
        help="extra arguments for the config's `predict` hook; a run of an experiment folder: for its infer_config(hparams, *args)",
    )
    return parser


def run(args: argparse.Namespace) -> int:
    from torch.utils.data import TensorDataset

    from ..config import instantiate
    from ..engine.data import SeededSamples
    from .inputs import model_inputs

    if args.output and Path(args.output).suffix not in (".csv", ".npy"):
        raise UsageError(f"{args.output}: unsupported output type {Path(args.output).suffix!r}; expected .csv or .npy")
    if args.inputs_prepared and not args.input:
        raise UsageError(
            "--inputs-prepared describes the --input file; without --input, predict reads the dataset's --split"
        )
    experiment = _experiment(Path(args.run_dir))
    extra = _extra_arguments(args.extra) if experiment is None else {}  # checked before the run is loaded
    run_dir, _, config, trainer = load_trained(args)
    inference = _inference(experiment, args) if experiment is not None else None
    if experiment is not None and inference is None:
        extra = _extra_arguments(args.extra)
    how = ""
    if inference is not None and "data" in inference:
        data, stem = _dataset(inference["data"]), "infer"
    elif args.input:
        train = trainer.loader("train")
        dataset = train.dataset if train is not None else None
        if isinstance(dataset, SeededSamples):  # the loader's wrapper for worker processes
            dataset = dataset.dataset
        inputs, how = model_inputs(Path(args.input), dataset, args.inputs_prepared)
        data, stem = TensorDataset(inputs), Path(args.input).stem
    else:
        if trainer.loader(args.split) is None:
            raise UsageError(f"{run_dir}: the config's dataset has no {args.split!r} split")
        data, stem = trainer.loader(args.split).dataset, args.split
    outputs = trainer.predict(data)
    if inference is not None and "output" in inference:
        result = inference["output"](outputs)
    elif config.get("predict"):
        result = instantiate(config["predict"])(outputs, **extra)
    elif extra:
        raise UsageError(
            f"extra arguments {sorted(extra)} given, but the config names no `predict` hook to receive them"
        )
    else:
        result = _default_columns(outputs)
    out = Path(args.output) if args.output else RunFolder(run_dir).predictions(stem)
    _write(result, out)
    print(f"written: {out} ({len(outputs)} predictions{', ' + how if how else ''})")
    return 0


INFERENCE_KEYS = ("data", "output")


def _experiment(run_dir: Path) -> dict | None:
    """run.json's ``experiment`` (a run of an experiment folder's hparams file), or None."""
    from ..runs.record import RecordError, read_record

    try:
        experiment = read_record(RunFolder(run_dir).record).get("experiment")
    except (RecordError, OSError):  # load_trained says what is wrong with the folder
        return None
    return experiment if isinstance(experiment, dict) else None


def _inference(experiment: dict, args: argparse.Namespace) -> dict | None:
    """What a run of an experiment folder predicts with: its ``infer_config(hparams, *extra)``, checked; else None.

    The dict may hold ``data`` (a dataset of what the model reads, or a
    tensor of it) and ``output`` (a function of the model's outputs that
    returns what is written: columns as a dict, or one tensor).
    """
    from ..config.experiments import PythonFileError, infer_config

    try:
        inference = infer_config(experiment, list(args.extra))
    except PythonFileError as exc:
        raise UsageError(str(exc)) from None
    if inference is None:
        return None
    where = f"{experiment['folder']}/__main__.py: infer_config"
    unknown = sorted(set(inference) - set(INFERENCE_KEYS))
    if unknown:
        raise UsageError(f"{where} returned the keys {unknown}; expected only {list(INFERENCE_KEYS)}")
    if "output" in inference and not callable(inference["output"]):
        raise UsageError(f"{where} returned output={inference['output']!r}; expected a function of the model's outputs")
    if "data" in inference and args.input:
        raise UsageError(f"--input {args.input}: {where} returned the data to predict already; give one or the other")
    return inference


def _dataset(data: Any):
    """A dataset to predict on: a tensor becomes a TensorDataset of its rows."""
    import torch
    from torch.utils.data import Dataset, TensorDataset

    if isinstance(data, torch.Tensor):
        return TensorDataset(data)
    if not isinstance(data, Dataset):
        raise UsageError(
            f"infer_config returned data of type {type(data).__name__}; expected a torch Dataset or a tensor"
        )
    return data


def _extra_arguments(extra: list[str]) -> dict[str, Any]:
    """``KEY=VALUE`` items, values typed as YAML, for the config's ``predict`` hook."""
    import yaml

    from ..config.files import parse_yaml

    parsed = {}
    for item in extra:
        key, sep, value = item.lstrip("-").partition("=")
        if not sep or not key.isidentifier():
            raise UsageError(f"extra argument {item!r}: expected KEY=VALUE")
        try:
            parsed[key] = parse_yaml(value)
        except yaml.YAMLError as exc:
            raise UsageError(
                f"extra argument {item!r}: cannot read the value as YAML ({getattr(exc, 'problem', exc)})"
            ) from None
    return parsed


def _default_columns(outputs):
    """Classification-shaped outputs: the predicted class and every output value."""
    if outputs.ndim == 2 and outputs.shape[1] > 1:
        columns = {"prediction": outputs.argmax(1)}
        columns.update({f"output_{i}": outputs[:, i] for i in range(outputs.shape[1])})
        return columns
    return {"prediction": outputs.reshape(len(outputs), -1).squeeze(1) if outputs[0].numel() == 1 else outputs}


def _write(result: Any, out: Path) -> None:
    """Columns (a dict), one tensor or an array, as CSV with a header or as .npy."""
    import numpy as np
    import torch

    if isinstance(result, torch.Tensor):
        result = {"prediction": result}
    if not isinstance(result, dict):
        result = {"prediction": np.asarray(result)}
    columns = {k: (v.numpy() if isinstance(v, torch.Tensor) else np.asarray(v)) for k, v in result.items()}
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix == ".npy":
        np.save(
            out,
            columns["prediction"] if len(columns) == 1 else np.stack([c.reshape(len(c)) for c in columns.values()], 1),
        )
    elif out.suffix == ".csv":
        names = list(columns)
        rows = np.stack([columns[n].reshape(len(columns[n])) for n in names], 1)
        formats = ["%d" if np.issubdtype(columns[n].dtype, np.integer) else "%.8g" for n in names]
        np.savetxt(out, rows, delimiter=",", header=",".join(names), comments="", fmt=formats)
    else:  # a default output path is .csv; a given one was checked before predicting
        raise UsageError(f"{out}: unsupported output type {out.suffix!r}; expected .csv or .npy")
