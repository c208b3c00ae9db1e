"""Checkpoints and weights files: written atomically, checked before they are loaded.

Modules, each importing only those above it in this list (no cycle):

- ``errors``: ``CheckpointError`` (a file that cannot be used: exit 2) and
  ``CheckpointWriteError`` (a write that failed; the previous file, if any, is intact);
- ``manifest``: ``checkpoints/manifest.json`` and its copy, the size and sha256
  of every checkpoint written, and the choice of a sound resume point;
- ``io``: a checkpoint file: framed, written through ``expresso.runs.atomic``
  (durable), read with ``weights_only=True`` after the manifest's check;
- ``optimizer_state``: whether a saved optimizer state fits the optimizer;
- ``weights``: model weights as safetensors (``expresso.export`` is its public face).
- ``writer``: the thread checkpoints are written on, and the copy of the state it is handed.

What a checkpoint holds, and putting it back into a trainer, is
``engine/snapshot.py``.
"""
