"""Model weights as safetensors: written from a checkpoint, read back into models.

A checkpoint (``checkpoints/*.ckpt``) holds a whole training state and is
read with ``torch.load(weights_only=True)``; an export holds only the
models' tensors, in the safetensors format, which cannot carry code at all
and is read by many tools. ``expresso export RUN_DIR`` writes one; in
Python::

    from expresso.export import load_weights, read_metadata

    load_weights("runs/digits-mlp/<run id>/export/best.safetensors", model)  # a single-model run
    load_weights(path, {"encoder": encoder, "decoder": decoder, "classifier": classifier})
    read_metadata(path)["experiment"]

The file
--------
One file holds every model of the run. Each tensor is stored under
``<model name>.<state_dict key>``: ``model.layers.1.weight`` for a plain
run (its one model is named ``model``), ``encoder.layers.1.weight`` in a
graph of several models. The safetensors metadata (strings only) records:

=====================  ==========================================================
``format``             ``expresso-weights``
``format_version``     ``1``
``expresso_version``   the expresso that wrote the file
``models``             the model names, in the run's order, as a JSON list
``experiment``         the run's experiment name (export of a checkpoint)
``checkpoint``         the checkpoint file's name, e.g. ``best.ckpt``
``epoch``, ``step``,   the checkpoint's loop position as it records it (after a
``batch_index``        finished epoch, ``epoch`` is the next one, ``batch_index`` 0)
=====================  ==========================================================

Shared tensors
--------------
safetensors refuses to save two names whose tensors share storage, and a
state_dict has those wherever weights are tied (an output layer that reuses
the embedding's matrix; a module used by two models of a graph): the
state_dict lists the one parameter under each name. ``safetensors.torch.save_model``
would keep one name and drop the others, and then a ``load_state_dict(strict=True)``
of the file misses the dropped names. Here every name is kept, and a tensor
whose storage an earlier tensor already uses is cloned: the file holds each
tied tensor once per name (more bytes, only for tied weights), and loading
it into a freshly built model copies the same values into the one shared
parameter once per name, so ties built by the model's constructor stay tied
and ``strict=True`` holds. Every tensor is also detached, moved to the CPU
and made contiguous, as safetensors requires.

Writing is atomic and durable (``expresso.runs.atomic``): a temporary file
in the destination's folder, fsynced, then renamed over the destination (and
the folder fsynced). A crash leaves the old file or the new one under the
final name, never half of one.

The code lives in ``expresso.engine.checkpoints.weights``; this module is
its public face.
"""

from __future__ import annotations

from .engine.checkpoints.weights import (
    FORMAT,
    FORMAT_VERSION,
    WeightsError,
    Written,
    checkpoint_weights,
    export_checkpoint,
    load_weights,
    model_names,
    read_metadata,
    save_weights,
)

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
