import subprocess
import sys

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from expresso.data import Digits
from expresso.data.digits import SHIPPED_SETTINGS, SHIPPED_SPLITS, SPLITS, split_key


def by_scikit_learn(split, seed=0, val_fraction=0.15, test_fraction=0.15, train_fraction=1.0):
    """The split's indices as scikit-learn's train_test_split makes them: the definition Digits follows."""
    target = load_digits().target
    rest, test = train_test_split(np.arange(len(target)), test_size=test_fraction, random_state=seed, stratify=target)
    val_share = val_fraction / (1 - test_fraction)
    train, val = train_test_split(rest, test_size=val_share, random_state=seed, stratify=target[rest])
    if train_fraction < 1:
        train, _ = train_test_split(train, train_size=train_fraction, random_state=seed, stratify=target[train])
    return np.sort({"train": train, "val": val, "test": test}[split])


@pytest.mark.parametrize(
    "settings",
    [{}, {"train_fraction": 0.1}, {"seed": 1}, {"val_fraction": 0.2, "test_fraction": 0.1}, {"train_fraction": 0.5}],
    ids=str,
)
def test_each_split_holds_the_images_scikit_learn_splits_off_shipped_or_computed(settings):
    raw = load_digits()
    for split in SPLITS:
        dataset = Digits(split=split, **settings)
        expected = by_scikit_learn(split, **settings)
        assert np.array_equal(dataset.indices, expected)
        assert torch.equal(dataset.inputs, torch.from_numpy(raw.images[expected] / 16.0).float().unsqueeze(1))
        assert torch.equal(dataset.labels, torch.from_numpy(raw.target[expected]).long())


def test_the_shipped_splits_are_those_of_the_shipped_settings():
    with np.load(SHIPPED_SPLITS) as shipped:
        assert sorted(shipped.files) == sorted(f"{split_key(*s)} {split}" for s in SHIPPED_SETTINGS for split in SPLITS)
        for seed, val_fraction, test_fraction, train_fraction in SHIPPED_SETTINGS:
            for split in SPLITS:
                name = f"{split_key(seed, val_fraction, test_fraction, train_fraction)} {split}"
                assert np.array_equal(
                    shipped[name], by_scikit_learn(split, seed, val_fraction, test_fraction, train_fraction)
                )


def test_the_examples_digits_import_no_scikit_learn():
    """Importing scikit-learn (SciPy, pandas) is about 1.8 s of a 2-core process start: more than the MLP's training."""
    code = (
        "import sys; from expresso.data import Digits; "
        "[Digits(split=s, **k) for s in ('train', 'val', 'test') for k in ({}, {'train_fraction': 0.1})]; "
        "print(sorted(m for m in ('sklearn', 'scipy', 'pandas') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout == "[]\n"


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
