"""The typed schema of expresso's own config sections, and the shape of a config.

Why plain dataclasses with a small validator (validation.py) rather than
pydantic or OmegaConf structured configs: the rules we need are few (types,
ranges, choices, unknown keys), every error must name the file a value came
from, which only our composer knows, and ``expresso config`` must start in a
blink. Pydantic is a heavy import whose messages we would have to re-map;
OmegaConf structured configs check types but not ranges and report
OmegaConf's key paths without files. Dataclasses give typed Python objects
(``TrainerConfig(**config["trainer"])``) and the defaults in one place.

A config's root keys fall into a few kinds:

- components: one mapping with a ``class`` key (dataset, model, loss,
  optimizer, scheduler, step, predict: the hook ``expresso predict`` passes
  outputs and extra arguments to); ``scheduler`` may also be a list, and each of
  its entries may carry ``interval: epoch|step`` (SECTION_KEYS);
- collections of components: ``metrics`` (name -> component),
  ``callbacks`` (list), ``loggers`` (list of names or components), and for
  several models ``models``, ``datasets``, ``losses``, ``optimizers`` (name ->
  component);
- the wiring of several models: ``graph``, ``pipelines``, ``stages``
  (config/wiring.py);
- ``task``: plain values injected into the components that take them;
- settings: ``trainer`` and ``dataloader``, typed in ``expresso.settings``
  (a torch-free leaf the engine reads too);
- ``name``: the experiment's name (defaults to the config file's stem);
- ``init_from``: ``RUN_DIR[:best|last]``, start from another run's weights;
- many runs of one config: ``sweep`` (a mapping: what ``expresso sweep``
  searches) and ``series`` (a list of mappings of overrides, one run each);
  their contents are checked by expresso.sweeps.spec, which runs them.

Every one of those keys, and each entry of a collection, may instead hold a
file reference (``model: ../models/mlp.yaml``).
"""

from __future__ import annotations

from ..settings import DataLoaderConfig, TrainerConfig

COMPONENTS = ("dataset", "model", "loss", "optimizer", "scheduler", "step", "predict")
COLLECTIONS = {
    "metrics": dict,
    "callbacks": list,
    "loggers": list,
    "models": dict,
    "datasets": dict,
    "losses": dict,
    "optimizers": dict,
}
# The wiring of several models (config/wiring.py): graph nodes, pipelines, stages.
STRUCTURES = {"graph": list, "pipelines": dict, "stages": list}
VALUES = ("task",)
# Components that receive task values (task injection).
TASK_TARGETS = ("dataset", "model", "metrics", "models", "datasets")
# Framework keys a section's component may carry besides the callable's arguments.
SECTION_KEYS = {"scheduler": {"interval": ("epoch", "step")}}
# Keys inside a component mapping that are not keyword arguments.
CLASS_KEY, ARGS_KEY, PARTIAL_KEY = "class", "_args_", "_partial_"
RESERVED_KEYS = (CLASS_KEY, ARGS_KEY, PARTIAL_KEY)
# The settings sections, typed (expresso/settings.py).
SETTINGS = {"trainer": TrainerConfig, "dataloader": DataLoaderConfig}
# Many runs of one config (expresso.sweeps): what each holds.
SWEEPS = {"sweep": dict, "series": list}
ROOT_KEYS = ("name", "init_from", *COMPONENTS, *VALUES, *COLLECTIONS, *STRUCTURES, *SETTINGS, *SWEEPS)


def is_reference_slot(path: tuple) -> bool:
    """Whether a string at this key path may be a file reference."""
    if len(path) == 1:
        return path[0] in ROOT_KEYS and path[0] not in ("name", "init_from")
    return len(path) == 2 and (path[0] in COLLECTIONS or path[0] == "scheduler")


# What each root key is for, one line each: the docs' config reference is generated from it
# (scripts/docs_reference.py), and a test keeps it covering ROOT_KEYS.
ROOT_DOCS = {
    "name": "the experiment's name: the run folder is <runs_root>/<name>/<run id> (default: the config file's stem)",
    "init_from": "RUN_DIR, RUN_DIR:best, RUN_DIR:last or a .ckpt file: start from that run's weights "
    "(the models only; optimizers, schedules and position start afresh)",
    "dataset": "the data: built once per split (split='train'|'val'|'test') when its class takes `split`, "
    "else the training data only",
    "model": "the network: an nn.Module that reads the input `x` and writes the prediction `y_hat`",
    "loss": "called as loss(y_hat, y); not needed with a `step` that computes `loss` itself",
    "optimizer": "built with the model's parameters as its first argument",
    "scheduler": "built with the optimizer as its first argument; a list for several; each may carry "
    "`interval: epoch` (the default) or `interval: step`",
    "step": "replaces the forward and the loss: called as step(graph, tensors) on every batch, returns the tensors "
    "with `loss`",
    "predict": "the hook `expresso predict` calls as predict(outputs, **extra) with the model's outputs and the "
    "command's extra KEY=VALUE arguments; returns columns (a dict), a tensor or an array",
    "task": "plain values (num_classes, ...) passed to the dataset, model and metrics wherever their signature "
    "takes a parameter of that name",
    "metrics": "name -> a torchmetrics Metric, or any callable fn(prediction, target) returning one number",
    "callbacks": "a list of Callback components, added to (or replacing by class) the default ones",
    "loggers": "where values go besides the run folder: short names (csv, tensorboard, mlflow, clearml, sacred, "
    "comet, wandb) or Logger components (default: [csv])",
    "models": "several models: name -> component (a graph; see Graphs)",
    "datasets": "several datasets: name -> component, read by `pipelines`",
    "losses": "several loss terms: name -> {inputs, weight, ...} (a graph)",
    "optimizers": "one optimizer per model or group of models: name -> component with `models`",
    "graph": "the nodes of a graph: which model reads which named tensors and writes which",
    "pipelines": "name -> a data source with its batch adapter, losses, metrics and updates",
    "stages": "training in steps: each with its epochs, pipelines, frozen models and stop conditions",
    "trainer": "how long and where to train, on what batches, and what 'best' means (the settings below)",
    "dataloader": "torch DataLoader settings shared by every split (the settings below)",
    "sweep": "many runs of this config, for `expresso sweep`: parameters (choice, range, int, uniform, "
    "log-uniform), objective, search (grid, random, optuna), trials, sampler, pruner, jobs (see Sweeps)",
    "series": "a list of override mappings: `expresso train` runs the config once per entry, as a sweep's trials",
}
