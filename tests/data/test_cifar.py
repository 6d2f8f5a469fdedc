"""CIFAR-10 from a tiny cifar-10-batches-py folder written by the tests."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from autoprune.core.errors import AutopruneError
from autoprune.data import load_dataset

PER_BATCH = 10


def write_batch(path: Path, first_id: int, n: int = PER_BATCH) -> None:
    """A batch whose image i has every byte equal to its id (first_id + i)."""
    ids = np.arange(first_id, first_id + n, dtype=np.uint8)
    data = np.repeat(ids[:, None], 3 * 32 * 32, axis=1)
    labels = [int(i) % 10 for i in ids]
    with path.open("wb") as f:
        pickle.dump({b"data": data, b"labels": labels, b"batch_label": b"test"}, f)


def write_cifar(root: Path) -> Path:
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    for i in range(5):
        write_batch(folder / f"data_batch_{i + 1}", first_id=i * PER_BATCH)
    write_batch(folder / "test_batch", first_id=100, n=4)
    return folder


@pytest.mark.parametrize("use_parent", [False, True])
def test_loads_folder_or_its_parent(tmp_path: Path, use_parent: bool) -> None:
    folder = write_cifar(tmp_path)
    splits = load_dataset("cifar10", data_dir=tmp_path if use_parent else folder, val_size=5)
    assert splits.input_shape == (3, 32, 32) and splits.num_classes == 10
    assert (len(splits.y_train), len(splits.y_val), len(splits.y_test)) == (45, 5, 4)
    raw = torch.round((splits.x_test * splits.std[0] + splits.mean[0]) * 255)
    assert raw[:, 0, 0, 0].tolist() == [100.0, 101.0, 102.0, 103.0]
    assert splits.y_test.tolist() == [0, 1, 2, 3]
    train_ids = torch.round((splits.x_train[:, 0, 0, 0] * splits.std[0] + splits.mean[0]) * 255)
    assert torch.equal(splits.y_train, train_ids.long() % 10)


def test_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(AutopruneError, match="cifar-10-batches-py.*--data-dir") as info:
        load_dataset("cifar10", data_dir=tmp_path)
    assert str(tmp_path) in str(info.value)


def test_missing_training_batch(tmp_path: Path) -> None:
    folder = write_cifar(tmp_path)
    (folder / "data_batch_3").unlink()
    with pytest.raises(AutopruneError, match="data_batch_3"):
        load_dataset("cifar10", data_dir=folder)


def test_corrupt_batch(tmp_path: Path) -> None:
    folder = write_cifar(tmp_path)
    (folder / "data_batch_2").write_bytes(b"not a pickle")
    with pytest.raises(AutopruneError, match="data_batch_2: not a readable CIFAR-10 batch"):
        load_dataset("cifar10", data_dir=folder)


def test_batch_with_wrong_shape(tmp_path: Path) -> None:
    folder = write_cifar(tmp_path)
    with (folder / "test_batch").open("wb") as f:
        pickle.dump({b"data": np.zeros((2, 10), np.uint8), b"labels": [0, 1]}, f)
    with pytest.raises(AutopruneError, match=r"test_batch: data has shape \(2, 10\)"):
        load_dataset("cifar10", data_dir=folder)
