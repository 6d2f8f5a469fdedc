"""build_splits and its helpers: conversion, validation carve-out, normalisation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from autoprune.core.errors import AutopruneError
from autoprune.data._prepare import as_images, as_labels, build_splits, carve


def _raw(n_train: int = 60, n_test: int = 20, channels: int = 2) -> tuple[np.ndarray, ...]:
    """Images whose pixels all equal a unique sample id (train ids 0.., test ids 1000..)."""
    rng = np.random.default_rng(0)
    ids = np.arange(n_train, dtype=np.float32)
    x_train = np.broadcast_to(ids[:, None, None, None], (n_train, channels, 3, 3)).copy()
    x_train[:, -1] *= 3.0  # give the channels different statistics
    x_test = np.full((n_test, channels, 3, 3), 1000.0, dtype=np.float32)
    y_train = np.arange(n_train) % 3
    y_test = rng.integers(0, 3, n_test)
    return x_train, y_train, x_test, y_test


def _ids(x: torch.Tensor, splits_mean: float, splits_std: float) -> set[int]:
    return {round(v) for v in (x[:, 0, 0, 0] * splits_std + splits_mean).tolist()}


def test_sizes_and_disjoint_train_val() -> None:
    splits = build_splits("toy", *_raw(), val_size=0.25, seed=0)
    assert (len(splits.y_train), len(splits.y_val), len(splits.y_test)) == (45, 15, 20)
    train_ids = _ids(splits.x_train, splits.mean[0], splits.std[0])
    val_ids = _ids(splits.x_val, splits.mean[0], splits.std[0])
    assert not train_ids & val_ids
    assert train_ids | val_ids == set(range(60))
    assert splits.num_classes == 3 and splits.input_shape == (2, 3, 3)


def test_labels_follow_their_images() -> None:
    splits = build_splits("toy", *_raw(), val_size=12, seed=5)
    for x, y in ((splits.x_train, splits.y_train), (splits.x_val, splits.y_val)):
        ids = torch.round(x[:, 0, 0, 0] * splits.std[0] + splits.mean[0]).long()
        assert torch.equal(y, ids % 3)


def test_validation_is_stratified() -> None:
    splits = build_splits("toy", *_raw(), val_size=0.25, seed=2)
    assert torch.bincount(splits.y_val).tolist() == [5, 5, 5]


def test_same_seed_same_split_other_seed_other_val() -> None:
    a = build_splits("toy", *_raw(), val_size=0.2, seed=1)
    b = build_splits("toy", *_raw(), val_size=0.2, seed=1)
    c = build_splits("toy", *_raw(), val_size=0.2, seed=2)
    for field in ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test"):
        assert torch.equal(getattr(a, field), getattr(b, field))
    assert not torch.equal(a.x_val, c.x_val)
    assert torch.equal(a.y_test, c.y_test)
    raw_a = a.x_test[:, 0] * a.std[0] + a.mean[0]
    raw_c = c.x_test[:, 0] * c.std[0] + c.mean[0]
    assert torch.allclose(raw_a, raw_c)  # same test images, only the train statistics differ


def test_normalisation_uses_train_statistics_only() -> None:
    x_train, y_train, x_test, y_test = _raw()
    splits = build_splits("toy", x_train, y_train, x_test, y_test, val_size=0.25, seed=0)
    assert torch.allclose(splits.x_train.mean(dim=(0, 2, 3)), torch.zeros(2), atol=1e-5)
    assert torch.allclose(splits.x_train.std(dim=(0, 2, 3), unbiased=False), torch.ones(2))
    train_ids = sorted(_ids(splits.x_train, splits.mean[0], splits.std[0]))
    raw = x_train[train_ids]
    assert splits.mean[1] == pytest.approx(float(raw[:, 1].mean()), rel=1e-5)
    expected_test = (1000.0 - splits.mean[1]) / splits.std[1]
    assert torch.allclose(splits.x_test[:, 1], torch.full((20, 3, 3), expected_test))
    assert abs(float(splits.x_val.mean())) > 0.0  # val is not re-centred on itself


def test_inputs_are_not_modified() -> None:
    x_train, y_train, x_test, y_test = _raw()
    before = x_train.copy()
    build_splits("toy", x_train, y_train, x_test, y_test, val_size=0.25, seed=0)
    assert np.array_equal(x_train, before)


def test_constant_channel_does_not_divide_by_zero() -> None:
    x = np.zeros((10, 1, 2, 2), dtype=np.float32)
    splits = build_splits("flat", x, np.arange(10) % 2, x[:2], np.array([0, 1]), val_size=2, seed=0)
    assert torch.isfinite(splits.x_train).all() and splits.std == (1.0,)


def test_as_images_shapes_and_scaling() -> None:
    x = as_images(np.full((2, 4, 5), 255, dtype=np.uint8), "x")
    assert x.shape == (2, 1, 4, 5) and x.dtype == np.float32 and x.max() == 1.0
    assert as_images(torch.ones(2, 3, 4, 4, dtype=torch.float64), "x").dtype == np.float32
    with pytest.raises(AutopruneError, match="channels-last"):
        as_images(np.zeros((2, 8, 8, 3)), "x_train")
    with pytest.raises(AutopruneError, match=r"x_train: images have shape \(2, 8\)"):
        as_images(np.zeros((2, 8)), "x_train")


def test_as_labels_accepts_whole_floats_and_column_vectors() -> None:
    assert as_labels(np.array([[1.0], [2.0]]), "y").tolist() == [1, 2]
    with pytest.raises(AutopruneError, match="integer class indices"):
        as_labels(np.array([0.5, 1.0]), "y")
    with pytest.raises(AutopruneError, match="start at 0"):
        as_labels(np.array([-1, 2]), "y")


def test_carve_falls_back_when_a_class_is_too_small() -> None:
    labels = np.array([0, 0, 0, 0, 0, 1])
    kept, held = carve(labels, 2, seed=0)
    assert len(held) == 2 and sorted([*kept, *held]) == list(range(6))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"val_size": 0, "seed": 0}, "at least 1"),
        ({"val_size": 1.0, "seed": 0}, r"fraction in \(0, 1\)"),
        ({"val_size": True, "seed": 0}, "count or a fraction"),
        ({"val_size": 60, "seed": 0}, "leaves no training samples"),
        ({"val_size": 0.1, "seed": -1}, "seed"),
    ],
)
def test_bad_val_size_or_seed(kwargs: dict, message: str) -> None:
    with pytest.raises(AutopruneError, match=message):
        build_splits("toy", *_raw(), **kwargs)


def test_length_mismatch_names_the_arrays() -> None:
    x_train, y_train, x_test, y_test = _raw()
    with pytest.raises(AutopruneError, match="x_test has 20 samples but y_test has 19"):
        build_splits("toy", x_train, y_train, x_test, y_test[:19], val_size=0.1, seed=0)
