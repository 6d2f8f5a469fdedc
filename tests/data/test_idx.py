"""IDX reading (MNIST / Fashion-MNIST) from tiny files written by the tests."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest
import torch

from autoprune.core.errors import AutopruneError
from autoprune.data import DEFAULT_DATA_DIRS, load_dataset
from autoprune.data._idx import IMAGES_MAGIC, LABELS_MAGIC, read_idx

STEMS = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}


def idx_bytes(array: np.ndarray, magic: int | None = None) -> bytes:
    """Serialise a uint8 array in IDX format (magic, big-endian dims, data)."""
    magic = (0x0800 | array.ndim) if magic is None else magic
    dims = np.asarray(array.shape, dtype=">u4").tobytes()
    return magic.to_bytes(4, "big") + dims + array.astype(np.uint8).tobytes()


def write_idx(path: Path, array: np.ndarray, *, gz: bool, magic: int | None = None) -> Path:
    data = idx_bytes(array, magic)
    path = path.with_name(path.name + ".gz") if gz else path
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


def tiny_arrays(n_train: int = 50, n_test: int = 10) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {
        "x_train": rng.integers(0, 256, (n_train, 5, 4), dtype=np.uint8),
        "y_train": (np.arange(n_train) % 10).astype(np.uint8),
        "x_test": rng.integers(0, 256, (n_test, 5, 4), dtype=np.uint8),
        "y_test": (np.arange(n_test) % 10).astype(np.uint8),
    }


def write_dataset(folder: Path, arrays: dict[str, np.ndarray], *, gz: bool) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for key, stem in STEMS.items():
        write_idx(folder / stem, arrays[key], gz=gz)
    return folder


@pytest.mark.parametrize("gz", [False, True])
def test_read_idx_round_trip(tmp_path: Path, gz: bool) -> None:
    images = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    path = write_idx(tmp_path / "imgs", images, gz=gz)
    assert np.array_equal(read_idx(path, IMAGES_MAGIC), images)


@pytest.mark.parametrize("gz", [False, True])
def test_load_mnist_style_folder(tmp_path: Path, gz: bool) -> None:
    arrays = tiny_arrays()
    folder = write_dataset(tmp_path / "files", arrays, gz=gz)
    splits = load_dataset("mnist", data_dir=folder, val_size=10, seed=0)
    assert splits.input_shape == (1, 5, 4) and splits.num_classes == 10
    assert (len(splits.y_train), len(splits.y_val), len(splits.y_test)) == (40, 10, 10)
    assert torch.equal(splits.y_test, torch.from_numpy(arrays["y_test"]).long())
    raw_test = splits.x_test * splits.std[0] + splits.mean[0]
    expected = torch.from_numpy(arrays["x_test"]).float()[:, None] / 255
    assert torch.allclose(raw_test, expected, atol=1e-5)


def test_dataset_subfolder_of_data_dir_is_found(tmp_path: Path) -> None:
    write_dataset(tmp_path / "fashion-mnist", tiny_arrays(), gz=True)
    splits = load_dataset("fashion-mnist", data_dir=tmp_path, val_size=0.2, seed=0)
    assert len(splits.y_train) + len(splits.y_val) == 50


def test_wrong_magic(tmp_path: Path) -> None:
    path = write_idx(tmp_path / "labels", np.zeros(4, np.uint8), gz=False, magic=LABELS_MAGIC)
    with pytest.raises(AutopruneError, match=f"{path}: IDX magic number is 2049, expected 2051"):
        read_idx(path, IMAGES_MAGIC)


def test_truncated_data(tmp_path: Path) -> None:
    path = tmp_path / "imgs"
    path.write_bytes(idx_bytes(np.zeros((3, 2, 2), np.uint8))[:-5])
    with pytest.raises(AutopruneError, match="7 bytes follow; the file is truncated"):
        read_idx(path, IMAGES_MAGIC)


def test_truncated_header_and_trailing_bytes(tmp_path: Path) -> None:
    short = tmp_path / "short"
    short.write_bytes(b"\x00\x00\x08")
    with pytest.raises(AutopruneError, match="shorter than the 8-byte IDX header"):
        read_idx(short, LABELS_MAGIC)
    long = tmp_path / "long"
    long.write_bytes(idx_bytes(np.zeros(3, np.uint8)) + b"\x01")
    with pytest.raises(AutopruneError, match="trailing bytes"):
        read_idx(long, LABELS_MAGIC)


def test_broken_gzip(tmp_path: Path) -> None:
    path = tmp_path / "labels.gz"
    path.write_bytes(gzip.compress(idx_bytes(np.zeros(50, np.uint8)))[:-10])
    with pytest.raises(AutopruneError, match="broken gzip data"):
        read_idx(path, LABELS_MAGIC)


def test_image_label_count_mismatch(tmp_path: Path) -> None:
    arrays = tiny_arrays()
    arrays["y_train"] = arrays["y_train"][:-1]
    folder = write_dataset(tmp_path, arrays, gz=False)
    with pytest.raises(AutopruneError, match="50 images but .*train-labels.* holds 49 labels"):
        load_dataset("mnist", data_dir=folder)


def test_label_out_of_range(tmp_path: Path) -> None:
    arrays = tiny_arrays()
    arrays["y_test"][0] = 12
    folder = write_dataset(tmp_path, arrays, gz=False)
    with pytest.raises(AutopruneError, match="num_classes is 10"):
        load_dataset("mnist", data_dir=folder)


def test_missing_folder_explains_the_fix(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    with pytest.raises(AutopruneError) as info:
        load_dataset("fashion-mnist", data_dir=missing)
    message = str(info.value)
    assert str(missing) in message and "train-images-idx3-ubyte" in message
    assert "apt-get install dataset-fashion-mnist" in message and "--data-dir" in message
    assert "\n" not in message


def test_one_missing_file_is_named(tmp_path: Path) -> None:
    folder = write_dataset(tmp_path, tiny_arrays(), gz=True)
    (folder / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(AutopruneError, match="cannot find t10k-labels-idx1-ubyte"):
        load_dataset("mnist", data_dir=folder)


def test_mnist_has_no_default_folder() -> None:
    with pytest.raises(AutopruneError, match="no default folder.*--data-dir"):
        load_dataset("mnist")


@pytest.mark.slow
def test_installed_debian_fashion_mnist() -> None:
    folder = DEFAULT_DATA_DIRS["fashion-mnist"]
    if not (folder / "train-images-idx3-ubyte.gz").is_file():
        pytest.skip(f"dataset-fashion-mnist is not installed ({folder} is missing)")
    splits = load_dataset("fashion-mnist", val_size=0.1, seed=0)
    assert len(splits.y_train) + len(splits.y_val) == 60000
    assert (len(splits.y_val), len(splits.y_test)) == (6000, 10000)
    assert splits.input_shape == (1, 28, 28) and splits.num_classes == 10
    assert torch.bincount(splits.y_test).tolist() == [1000] * 10
