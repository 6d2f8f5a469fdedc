"""``npz:PATH`` datasets."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from autoprune.core.errors import AutopruneError
from autoprune.data import load_dataset


def _arrays() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(1)
    return {
        "x_train": rng.integers(0, 256, (24, 6, 6), dtype=np.uint8),
        "y_train": np.arange(24) % 4,
        "x_test": rng.integers(0, 256, (8, 6, 6), dtype=np.uint8),
        "y_test": np.array([0, 1, 2, 3, 0, 1, 2, 3]),
    }


def test_loads_hw_images_and_counts_classes(tmp_path: Path) -> None:
    path = tmp_path / "d.npz"
    np.savez(path, **_arrays())
    splits = load_dataset(f"npz:{path}", val_size=8, seed=3)
    assert splits.name == f"npz:{path}"
    assert splits.input_shape == (1, 6, 6) and splits.num_classes == 4
    assert (len(splits.y_train), len(splits.y_val), len(splits.y_test)) == (16, 8, 8)
    assert splits.x_train.dtype == torch.float32 and splits.y_train.dtype == torch.int64
    assert torch.equal(load_dataset(f"npz:{path}", val_size=8, seed=3).x_val, splits.x_val)


def test_loads_nchw_float_images(tmp_path: Path) -> None:
    arrays = _arrays()
    arrays["x_train"] = np.random.default_rng(0).normal(size=(24, 2, 3, 3))
    arrays["x_test"] = np.zeros((8, 2, 3, 3))
    path = tmp_path / "d.npz"
    np.savez(path, **arrays)
    splits = load_dataset(f"npz:{path}")
    assert splits.input_shape == (2, 3, 3)


def test_missing_array_is_named(tmp_path: Path) -> None:
    arrays = _arrays()
    del arrays["y_test"]
    path = tmp_path / "d.npz"
    np.savez(path, **arrays)
    with pytest.raises(AutopruneError, match=r"missing array\(s\) y_test.*np.savez"):
        load_dataset(f"npz:{path}")


def test_length_mismatch_names_the_arrays(tmp_path: Path) -> None:
    arrays = _arrays()
    arrays["y_train"] = arrays["y_train"][:20]
    path = tmp_path / "d.npz"
    np.savez(path, **arrays)
    with pytest.raises(AutopruneError, match="x_train has 24 samples but y_train has 20"):
        load_dataset(f"npz:{path}")


def test_missing_and_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(AutopruneError, match="does not exist"):
        load_dataset(f"npz:{tmp_path / 'absent.npz'}")
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"definitely not a zip archive")
    with pytest.raises(AutopruneError, match="not a readable .npz file"):
        load_dataset(f"npz:{junk}")
    single = tmp_path / "single.npy"
    np.save(single, np.zeros(3))
    with pytest.raises(AutopruneError, match="single array"):
        load_dataset(f"npz:{single}")
