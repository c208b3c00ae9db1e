"""Damaged checkpoints in a real run folder: ``eval``, ``resume``, ``predict`` exit 2 naming the file, never a traceback.

One run folder is trained once per session (conftest.py); each example copies
it, damages ``checkpoints/last.ckpt``, ``best.ckpt`` or both (random bytes, a
truncation or one flipped byte of the real file), keeps or drops the folder's
manifest and its copy (a folder from before manifests has neither), and runs one command
in-process. A failed command must leave nothing that claims a success: no
``eval-*.json``, no predictions, run.json not ``completed``; refused at its
first read, it must leave no new file at all and the checkpoints as they were.

Well-formed torch files that are not the run's checkpoint, a garbled
manifest, and a run folder from before manifests are fuzzed too.
"""

from __future__ import annotations

import functools
import io
import json
import shutil
from pathlib import Path

import torch
from fuzz_support import assert_clean_failure, at_most, isolated, quiet_main, trees
from hypothesis import example, given
from hypothesis import strategies as st

RESUMABLE = "interrupted"  # the copied run's status: what a run that is resumed says


@functools.cache
def real_bytes(run_dir: Path) -> dict[str, bytes]:
    return {name: (run_dir / "checkpoints" / name).read_bytes() for name in ("last.ckpt", "best.ckpt")}


def saved(obj) -> bytes:
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


# How a checkpoint is damaged: (kind, argument); `damage` turns it into bytes from the real file's.
byte_damages = st.one_of(
    st.tuples(st.just("random"), st.binary(max_size=2048)),
    st.tuples(st.just("truncate"), st.floats(0, 1, exclude_max=True)),
    st.tuples(st.just("flip"), st.tuples(st.floats(0, 1, exclude_max=True), st.integers(1, 255))),
)
# Well-formed torch files that are not this run's checkpoint: any data, or the checkpoint marker around random sections.
SECTIONS = ["models", "optimizers", "loop", "callbacks", "rng", "config", "stages", "metrics", "train_metrics"]
foreign_files = st.tuples(
    st.just("torch"),
    st.one_of(
        trees,
        st.builds(
            lambda t: {"format": "expresso-checkpoint", "version": 1, **t},
            st.dictionaries(st.sampled_from(SECTIONS), trees),
        ),
    ),
)


def damage(real: bytes, kind: str, argument) -> bytes:
    if kind == "random":
        return argument
    if kind == "truncate":
        return real[: int(argument * len(real))]
    if kind == "flip":
        fraction, mask = argument
        position = int(fraction * len(real))
        return real[:position] + bytes([real[position] ^ mask]) + real[position + 1 :]
    return saved(argument)


COMMANDS = {
    "eval": ["eval", "{run}"],
    "eval-last": ["eval", "{run}", "--checkpoint", "last", "--split", "val"],
    "resume": ["resume", "{run}"],
    "resume-more": ["resume", "{run}", "trainer.max_epochs=2", "trainer.limit_epochs=2"],
    "predict": ["predict", "{run}"],
}


# The checkpoint each command reads before it does anything (resume reads best.ckpt again at the end, eval falls back to last).
FIRST_READ = {
    "eval": "best.ckpt",
    "eval-last": "last.ckpt",
    "resume": "last.ckpt",
    "resume-more": "last.ckpt",
    "predict": "best.ckpt",
}


RECORDS = ("manifest.json", "manifest.copy.json")  # the checkpoints' size and sha256 records


def drop_records(run: Path) -> None:
    """A run folder from before manifests: no record of its checkpoints at all."""
    for name in RECORDS:
        (run / "checkpoints" / name).unlink(missing_ok=True)


def files_in(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@at_most(2000)
@given(
    which=st.sampled_from([("last.ckpt",), ("best.ckpt",), ("last.ckpt", "best.ckpt")]),
    how=byte_damages,
    manifest=st.sampled_from(["kept", "removed"]),
    command=st.sampled_from(sorted(COMMANDS)),
)
@example(which=("last.ckpt", "best.ckpt"), how=("random", b""), manifest="removed", command="eval")
@example(which=("last.ckpt", "best.ckpt"), how=("truncate", 0.5), manifest="removed", command="resume")
def test_damaged_checkpoints_exit_2_and_claim_nothing(trained_run, which, how, manifest, command):
    run_damaged(trained_run, which, how, manifest, command)


def test_resume_without_manifest_keeps_going_with_a_sound_best_checkpoint(trained_run):
    with isolated() as folder:
        run = folder / "run"
        shutil.copytree(trained_run, run)
        drop_records(run)  # a run folder from before manifests
        code, out, err = quiet_main(["resume", run, "trainer.max_epochs=2", "trainer.limit_epochs=2"])
        assert code == 0, err


@at_most(2000)
@given(
    which=st.sampled_from([("last.ckpt",), ("best.ckpt",), ("last.ckpt", "best.ckpt")]),
    how=foreign_files,
    command=st.sampled_from(sorted(COMMANDS)),
)
@example(
    which=("last.ckpt", "best.ckpt"), how=("torch", {"format": "expresso-checkpoint", "version": 1}), command="eval"
)
def test_foreign_torch_files_as_checkpoints_exit_2(trained_run, which, how, command):
    """A well-formed torch file that is not this run's checkpoint (no manifest to catch it: a folder from before manifests)."""
    run_damaged(trained_run, which, how, "removed", command)


def run_damaged(trained_run: Path, which: tuple, how: tuple, manifest: str, command: str) -> None:
    with isolated() as folder:
        run = folder / "run"
        shutil.copytree(trained_run, run)
        record = json.loads((run / "run.json").read_text())
        (run / "run.json").write_text(json.dumps({**record, "status": RESUMABLE}))
        for name in which:
            (run / "checkpoints" / name).write_bytes(damage(real_bytes(trained_run)[name], *how))
        if manifest == "removed":
            drop_records(run)
        before = files_in(run)

        code, out, err = quiet_main([part.format(run=run) for part in COMMANDS[command]])

        assert_clean_failure(code, err)
        if code == 2:
            # a resume whose checkpoint loads may find nothing to train before it reads any other file
            assert any(name in err for name in which) or command == "resume" and ": nothing to train: " in err, err
            after = files_in(run)
            claims = [
                name for name in set(after) - set(before) if name.startswith(("eval-", "predictions-", "export/"))
            ]
            assert claims == [], f"a failed command wrote {claims}"
            assert json.loads((run / "run.json").read_text())["status"] != "completed"
            if (
                FIRST_READ[command] in which and FIRST_READ[command] in err
            ):  # refused before anything ran: nothing new at all
                assert sorted(set(after) - set(before)) == [], "a failed command left new files"
                for name in ("checkpoints/last.ckpt", "checkpoints/best.ckpt"):
                    assert after.get(name) == before.get(name), f"a failed command replaced {name}"


@at_most(2000)
@given(
    content=st.one_of(st.binary(max_size=512), trees.map(lambda t: json.dumps(t).encode())),
    garbled=st.sampled_from([RECORDS[:1], RECORDS]),
    command=st.sampled_from(sorted(COMMANDS)),
)
@example(content=b'{"files": {"last.ckpt": 3}, "recent": [7]}', garbled=RECORDS, command="eval")
def test_garbled_manifest_exits_0_or_2(trained_run, content, garbled, command):
    """Only the records are damaged, the manifest or both (the checkpoints are sound): a clean result or a clean refusal."""
    with isolated() as folder:
        run = folder / "run"
        shutil.copytree(trained_run, run)
        for name in garbled:
            (run / "checkpoints" / name).write_bytes(content)
        code, out, err = quiet_main([part.format(run=run) for part in COMMANDS[command]])
        assert_clean_failure(code, err)


def test_an_optimizer_state_key_with_a_flipped_bit_is_refused_naming_the_key(trained_run):
    """Found by the long fuzz run: one flipped bit turned ``exp_avg_sq`` into ``exp_avg_sp``; with no manifest
    the file loaded, and the first step after the resume died with a KeyError inside torch's AdamW."""
    with isolated() as folder:
        run = folder / "run"
        shutil.copytree(trained_run, run)
        drop_records(run)
        payload = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
        for entry in payload["optimizers"]["optimizer"]["state"].values():
            entry["exp_avg_sp"] = entry.pop("exp_avg_sq")
        torch.save(payload, run / "checkpoints" / "last.ckpt")
        code, out, err = quiet_main(["resume", run, "trainer.max_epochs=2", "trainer.limit_epochs=2"])
        assert code == 2, err
        assert str(run / "checkpoints" / "last.ckpt") in err
        assert (
            "optimizer 'optimizer': the state of parameter 0 has keys ['exp_avg', 'exp_avg_sp', 'step'], AdamW keeps ['exp_avg', 'exp_avg_sq', 'step']"
            in err
        )
