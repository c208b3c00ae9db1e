"""History rebuilds a damaged metrics.csv from the rows its checkpoint holds (issue 14, item 9).

The crash-and-resume helpers are test_history.py's: a run crashed at step 10
after a checkpoint at step 6, resumed from that checkpoint.
"""

from __future__ import annotations

import logging

import pytest
from test_history import Crash, SaveAt, resumable

from expresso.callbacks import History

DAMAGE = {
    "garbage": (lambda text: b"\xff\xfe\x00garbage", "is not UTF-8 text (byte 0)"),
    "cut": (
        lambda text: text[: text.index(b"\n", text.index(b"\n") + 1) + 5],
        "is cut short inside line 3: 1 of the 3 rows the checkpoint counts are whole",
    ),
    "flipped": (
        lambda text: text.replace(b"\n1,3,", b"\n1,2,", 1),
        "has a damaged line 2 (not what the checkpoint recorded)",
    ),
    "emptied": (lambda text: b"", "is empty"),
    "missing": (None, "is missing"),
}


@pytest.mark.parametrize("how", list(DAMAGE))
def test_a_damaged_file_is_rebuilt_exactly_from_the_checkpoint_with_a_warning_naming_it(tmp_path, how, caplog):
    whole = tmp_path / "whole"
    resumable(whole).fit()
    crashed, checkpoint = tmp_path / "crashed", tmp_path / "resume.ckpt"
    with pytest.raises(RuntimeError, match="simulated crash"):
        resumable(crashed, SaveAt(checkpoint, 6), Crash(10)).fit()
    path = crashed / "metrics.csv"
    damage, what = DAMAGE[how]
    if damage is None:
        path.unlink()
    else:
        path.write_bytes(damage(path.read_bytes()))

    with caplog.at_level(logging.WARNING, logger="expresso"):
        resumable(crashed, model_seed=1).fit(resume_from=checkpoint)

    assert path.read_bytes() == (whole / "metrics.csv").read_bytes()
    warnings = [record.getMessage() for record in caplog.records if record.levelno == logging.WARNING]
    # rows 3 and 4 (the step-3 row, epoch 1's row) and the step-6 row: what the checkpoint at step 6 counts
    assert warnings == [f"expresso: warning: {path} {what}: rebuilt its 3 rows from the checkpoint"]


def test_an_undamaged_file_with_rows_after_the_checkpoint_is_cut_back_without_a_warning(tmp_path, caplog):
    crashed, checkpoint = tmp_path / "crashed", tmp_path / "resume.ckpt"
    with pytest.raises(RuntimeError, match="simulated crash"):
        resumable(crashed, SaveAt(checkpoint, 6), Crash(10)).fit()
    with caplog.at_level(logging.WARNING, logger="expresso"):
        resumable(crashed, model_seed=1).fit(resume_from=checkpoint)
    assert not [record for record in caplog.records if record.levelno >= logging.WARNING]


def test_a_checkpoint_that_predates_keeping_rows_keeps_the_sound_rows_of_a_damaged_file_and_warns(tmp_path, caplog):
    path = tmp_path / "metrics.csv"
    path.write_bytes(b"epoch,step,train/loss\r\n1,4,0.5\r\n2,8,0.\xff4\r\n")
    history = History(path=str(path))
    with caplog.at_level(logging.WARNING, logger="expresso"):
        history.load_state_dict({"columns": ["epoch", "step", "train/loss"], "rows_written": 2})
    assert path.read_bytes() == b"epoch,step,train/loss\r\n1,4,0.5\r\n"
    assert [record.getMessage() for record in caplog.records] == [
        f"expresso: warning: {path} holds 1 sound rows of the 2 the checkpoint counts (it predates keeping them):"
        " kept those, the rest are lost"
    ]
    assert history.state_dict() == {
        "columns": ["epoch", "step", "train/loss"],
        "rows_written": 1,
        "rows": [["1", "4", "0.5"]],
    }
