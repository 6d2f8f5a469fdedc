"""The embedded scikit-learn digits dataset."""

from __future__ import annotations

import pytest
import torch

from autoprune.data import load_dataset
from autoprune.data._digits import read_digits


def test_shape_classes_and_sizes() -> None:
    splits = load_dataset("digits")
    assert splits.name == "digits" and splits.num_classes == 10
    assert splits.input_shape == (1, 8, 8)
    sizes = (len(splits.y_train), len(splits.y_val), len(splits.y_test))
    assert sum(sizes) == 1797 and sizes[2] == 360
    assert torch.unique(splits.y_test).tolist() == list(range(10))


def test_raw_pixels_are_scaled_to_unit_range() -> None:
    x_train, _, x_test, _ = read_digits()
    assert x_train.shape[1:] == (8, 8)
    assert x_train.min() == 0.0 and x_train.max() == 1.0 and x_test.max() <= 1.0


def test_test_split_is_fixed_and_val_follows_seed() -> None:
    a = load_dataset("digits", seed=0)
    b = load_dataset("digits", seed=7)
    assert torch.equal(a.y_test, b.y_test)
    raw_a = a.x_test * a.std[0] + a.mean[0]
    raw_b = b.x_test * b.std[0] + b.mean[0]
    assert torch.allclose(raw_a, raw_b, atol=1e-5)
    val_a = a.x_val * a.std[0] + a.mean[0]
    val_b = b.x_val * b.std[0] + b.mean[0]
    assert not torch.allclose(val_a, val_b)
    assert torch.equal(load_dataset("digits", seed=7).x_val, b.x_val)


def test_train_mean_is_zero() -> None:
    splits = load_dataset("digits", val_size=100, seed=1)
    assert len(splits.y_val) == 100
    assert float(splits.x_train.mean()) == pytest.approx(0.0, abs=1e-5)
    assert float(splits.x_train.std(unbiased=False)) == pytest.approx(1.0, abs=1e-4)
