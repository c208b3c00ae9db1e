"""Reading `expresso predict --input` files: .npy, .csv (with or without a header row) and .pt; what is refused names the file."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from expresso.commands import UsageError
from expresso.commands.inputs import read_inputs

ROWS = np.arange(12, dtype=np.float64).reshape(3, 4)


def write_csv(path, text: str):
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    "text",
    [
        "0,1,2,3\n4,5,6,7\n8,9,10,11\n",
        "a,b,c,d\n0,1,2,3\n4,5,6,7\n8,9,10,11\n",
        "pixel_0, pixel_1,2,3\n0,1,2,3\n4,5,6,7\n8,9,10,11\n",
    ],
    ids=["no header", "header", "header with some numeric names"],
)
def test_a_csv_file_gives_its_rows_and_skips_a_header_row(tmp_path, text):
    assert torch.equal(read_inputs(write_csv(tmp_path / "x.csv", text)), torch.from_numpy(ROWS).float())


def test_npy_and_pt_files_give_float_tensors_of_their_rows(tmp_path):
    np.save(tmp_path / "x.npy", ROWS.astype(np.int64))
    torch.save(torch.from_numpy(ROWS), tmp_path / "x.pt")
    for name in ("x.npy", "x.pt"):
        assert torch.equal(read_inputs(tmp_path / name), torch.from_numpy(ROWS).float()), name


@pytest.mark.parametrize(
    "name, content, message",
    [
        (
            "x.csv",
            "a,b,c\n1,2,3\n4,5\n",
            "cannot read inputs (the number of columns changed from 3 to 2 at row 2",
        ),  # numpy's words follow
        ("x.csv", "a,b,c\n", "holds no inputs; expected one sample per row"),
        ("x.txt", "1,2\n", "unsupported input type '.txt'; expected .npy, .csv or .pt"),
    ],
    ids=["ragged rows", "a header alone", "unknown type"],
)
def test_unreadable_inputs_are_refused_naming_the_file(tmp_path, name, content, message):
    path = write_csv(tmp_path / name, content)
    with pytest.raises(UsageError) as info:
        read_inputs(path)
    assert str(info.value).startswith(f"{path}: {message}")
