"""Reading `expresso predict --input` files: .npy, .csv (with or without a header row) and .pt; what is refused names the file."""

from __future__ import annotations

import fractions
import os
import pickle
import warnings

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


class RunsCode:
    """A pickle that runs ``touch MARKER`` when unpickled with torch's full unpickler (as ``weights_only=False`` would)."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_a_pt_file_that_would_run_code_is_refused_unread_without_torchs_advice_to_unpickle_it(tmp_path):
    marker = tmp_path / "ran"
    torch.save(RunsCode(marker), tmp_path / "evil.pt")
    with pytest.raises(UsageError) as info:
        read_inputs(tmp_path / "evil.pt")
    assert str(info.value) == (
        f"{tmp_path / 'evil.pt'}: holds objects other than tensors and plain data (posix.system), so it was not loaded; "
        "expected a tensor saved with torch.save"
    )
    assert not marker.exists()
    torch.load(tmp_path / "evil.pt", weights_only=False)  # the file is what it claims: a full unpickler runs it
    assert marker.exists()


def write_bytes(path, content: bytes):
    path.write_bytes(content)
    return path


def saved(path, value, save=torch.save):
    save(value, path)
    return path


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda d: write_bytes(d / "x.pt", bytes(range(256)) * 4), "cannot read inputs: not a file torch.save wrote"),
        (lambda d: write_bytes(d / "x.pt", b"hello\n"), "cannot read inputs: not a file torch.save wrote"),
        (
            lambda d: write_bytes(d / "x.pt", b"PK\x03\x04" + b"\0" * 60),
            "cannot read inputs: not a file torch.save wrote (",
        ),
        (lambda d: saved(d / "x.pt", {"a": "text", "b": [1, 2]}), "expected a tensor, found dict"),
        (
            lambda d: saved(d / "x.pt", [1, 2, 3], lambda v, p: p.write_bytes(pickle.dumps(v, protocol=4))),
            "cannot read inputs: not a file torch.save wrote; expected a tensor saved with torch.save",
        ),
        (
            lambda d: saved(d / "x.pt", fractions.Fraction(1, 2)),
            "holds objects other than tensors and plain data (fractions.Fraction), so it was not loaded",
        ),
        (lambda d: write_bytes(d / "x.pt", b""), "holds no inputs; expected one sample per row"),
        (lambda d: write_bytes(d / "x.npy", b""), "holds no inputs; expected one sample per row"),
        (
            lambda d: write_bytes(d / "x.npy", bytes(range(256))),
            "cannot read inputs: not a .npy file (no NUMPY header)",
        ),
        (
            lambda d: saved(
                d / "x.npy", np.array([{"a": 1}], dtype=object), lambda v, p: np.save(p, v, allow_pickle=True)
            ),
            "cannot read inputs (not a numeric array: it holds Python objects, which are never unpickled)",
        ),
    ],
    ids=[
        "random bytes",
        "text",
        "damaged zip",
        "dict of non-tensors",
        "plain pickle",
        "object of a class",
        "empty .pt",
        "empty .npy",
        "random .npy",
        "object array",
    ],
)
def test_malformed_input_files_are_refused_in_one_line_naming_the_file_with_no_warning(tmp_path, make, message):
    path = make(tmp_path)
    with warnings.catch_warnings(), pytest.raises(UsageError) as info:
        warnings.simplefilter("error")  # a warning would be a second line on the command's stderr
        read_inputs(path)
    assert str(info.value).startswith(f"{path}: {message}"), str(info.value)
    assert (
        "\n" not in str(info.value) and "weights_only" not in str(info.value) and "allow_pickle" not in str(info.value)
    )
