import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

from expresso.data import Digits


def test_splits_are_disjoint_cover_all_images_and_follow_the_fractions():
    splits = {s: Digits(split=s) for s in ("train", "val", "test")}
    total = len(load_digits().target)
    indices = np.concatenate([d.indices for d in splits.values()])
    assert np.array_equal(np.sort(indices), np.arange(total))
    assert len(splits["test"]) == round(total * 0.15)
    assert len(splits["val"]) == round(total * 0.15)
    assert torch.equal(Digits(split="val").inputs, splits["val"].inputs)
    first = splits["train"].indices[0]
    assert torch.equal(splits["train"].inputs[0, 0], torch.from_numpy(load_digits().images[first]).float() / 16)


def test_split_depends_on_the_seed():
    assert not torch.equal(Digits(split="val", seed=0).labels, Digits(split="val", seed=1).labels)


def test_split_is_stratified():
    counts = np.bincount(Digits(split="test").labels.numpy(), minlength=10)
    assert counts.min() >= 26 and counts.max() <= 28


def test_targets_relabel_the_same_images():
    digit, parity, small = (Digits(split="train", target=t) for t in ("digit", "parity", "less_than_5"))
    assert torch.equal(digit.inputs, parity.inputs)
    assert torch.equal(parity.labels, digit.labels % 2)
    assert torch.equal(small.labels, (digit.labels < 5).long())


def test_items_are_scaled_images_and_int64_labels():
    x, y = Digits(split="train")[0]
    assert x.shape == (1, 8, 8) and x.dtype == torch.float32
    assert 0.0 <= x.min() and x.max() <= 1.0
    assert y.dtype == torch.int64


@pytest.mark.parametrize(
    "kwargs, needle",
    [
        ({"split": "validation"}, "split='validation'"),
        ({"target": "odd"}, "target='odd'"),
        ({"val_fraction": 0.9}, "val_fraction=0.9"),
    ],
)
def test_bad_arguments_name_the_argument_and_value(kwargs, needle):
    with pytest.raises(ValueError, match=needle.replace("(", r"\(")):
        Digits(**kwargs)


# -- prepare_inputs: raw rows in the dataset's form (expresso predict --input) ------------------------------
def test_prepare_inputs_turns_scikit_learns_raw_rows_and_images_into_exactly_the_datasets_inputs():
    test = Digits(split="test")
    digits = load_digits()
    assert torch.equal(test.prepare_inputs(torch.from_numpy(digits.data[test.indices]).float()), test.inputs)
    assert torch.equal(
        test.prepare_inputs(torch.from_numpy(digits.images[test.indices])), test.inputs
    )  # 8x8 each, float64


@pytest.mark.parametrize(
    "raw, message",
    [
        (torch.zeros(3, 63), "expected 64 pixel values (0-16) per image, received inputs of shape (3, 63)"),
        (
            torch.full((2, 64), 255.0),
            "expected pixel values 0-16, as load_digits() stores them; received values from 255 to 255",
        ),
        (
            torch.full((2, 64), -1.0),
            "expected pixel values 0-16, as load_digits() stores them; received values from -1 to -1",
        ),
        (
            torch.full((2, 64), 0.5),
            "the inputs look already scaled to [0, 1] (every value at most 1, some fractional); "
            "expected raw pixel values 0-16, or pass scaled images with --inputs-prepared",
        ),
    ],
    ids=["63 values", "0-255", "negative", "already scaled"],
)
def test_prepare_inputs_refuses_what_is_not_raw_digits(raw, message):
    with pytest.raises(ValueError) as info:
        Digits(split="test").prepare_inputs(raw)
    assert str(info.value) == f"Digits.prepare_inputs: {message}"


def test_prepare_inputs_accepts_blank_and_faint_raw_images():
    prepared = Digits(split="test").prepare_inputs(torch.tensor([[0.0] * 64, [1.0] * 64]))
    assert torch.equal(prepared, torch.tensor([[0.0] * 64, [1 / 16] * 64]).reshape(2, 1, 8, 8))
