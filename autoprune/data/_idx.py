"""MNIST-style IDX files (MNIST, Fashion-MNIST), raw or gzip-compressed, parsed with NumPy."""

from __future__ import annotations

import gzip
import math
import zlib
from pathlib import Path

import numpy as np

from autoprune.core.errors import AutopruneError
from autoprune.data._paths import missing_data_error, search_dirs

LABELS_MAGIC = 2049
"""IDX magic number of a 1-D unsigned-byte array (labels)."""
IMAGES_MAGIC = 2051
"""IDX magic number of a 3-D unsigned-byte array (images)."""

_FILES: dict[str, tuple[str, int]] = {
    "x_train": ("train-images-idx3-ubyte", IMAGES_MAGIC),
    "y_train": ("train-labels-idx1-ubyte", LABELS_MAGIC),
    "x_test": ("t10k-images-idx3-ubyte", IMAGES_MAGIC),
    "y_test": ("t10k-labels-idx1-ubyte", LABELS_MAGIC),
}
_SUBDIRS: dict[str, tuple[str, ...]] = {
    "fashion-mnist": ("fashion-mnist", "fashion_mnist", "FashionMNIST/raw"),
    "mnist": ("mnist", "MNIST/raw"),
}
_GZIP_MAGIC = b"\x1f\x8b"


def _read_bytes(path: Path) -> bytes:
    """File contents, decompressed when the file is gzip (by content, not by suffix)."""
    data = path.read_bytes()
    if data[:2] != _GZIP_MAGIC:
        return data
    try:
        return gzip.decompress(data)
    except (OSError, EOFError, zlib.error) as exc:
        raise AutopruneError(
            f"{path}: broken gzip data ({exc}); the file is truncated or corrupt, re-download it"
        ) from None


def read_idx(path: str | Path, magic: int) -> np.ndarray:
    """Read one unsigned-byte IDX file.

    Args:
        path: The file, raw or gzip-compressed.
        magic: Expected magic number (:data:`LABELS_MAGIC` or :data:`IMAGES_MAGIC`); its
            low byte is the number of dimensions.

    Returns:
        A read-only uint8 array with the dimensions stored in the header.

    Raises:
        AutopruneError: Wrong magic number, or data shorter or longer than the header says.
    """
    path = Path(path)
    data = _read_bytes(path)
    ndim = magic & 0xFF
    header = 4 + 4 * ndim  # magic, then one 4-byte size per dimension
    found = int.from_bytes(data[:4], "big")
    if len(data) >= 4 and found != magic:
        raise AutopruneError(
            f"{path}: IDX magic number is {found}, expected {magic}; "
            "this is not the right IDX file (or it is corrupt), re-download it"
        )
    if len(data) < header:
        raise AutopruneError(
            f"{path}: only {len(data)} bytes, shorter than the {header}-byte IDX header; "
            "the file is truncated, re-download it"
        )
    dims = tuple(int(d) for d in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    need, have = math.prod(dims), len(data) - header
    if have != need:
        problem = "truncated" if have < need else "has trailing bytes"
        raise AutopruneError(
            f"{path}: header says {dims} = {need} values but {have} bytes follow; "
            f"the file is {problem}, re-download it"
        )
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(dims)


def _find(name: str, stem: str, dirs: list[Path]) -> Path:
    """First existing file named like ``stem`` (``-idx`` or ``.idx``, raw or ``.gz``)."""
    variants = (stem, stem.replace("-idx", ".idx"))
    for folder in dirs:
        for variant in variants:
            for suffix in ("", ".gz"):
                candidate = folder / f"{variant}{suffix}"
                if candidate.is_file():
                    return candidate
    raise missing_data_error(name, f"{stem}[.gz]", dirs)


def read_idx_dataset(
    name: str, data_dir: str | Path | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Read the four IDX files of an MNIST-style dataset.

    Args:
        name: ``mnist`` or ``fashion-mnist``.
        data_dir: Folder holding the files (or a sub-folder named after the dataset, or
            torchvision's ``FashionMNIST/raw`` / ``MNIST/raw``); None for the default folder.

    Returns:
        ``(x_train, y_train, x_test, y_test)`` as uint8 arrays, images ``(N, H, W)``.
    """
    dirs = search_dirs(name, data_dir, _SUBDIRS.get(name, ()))
    paths = {key: _find(name, stem, dirs) for key, (stem, _) in _FILES.items()}
    arrays = {key: read_idx(paths[key], magic) for key, (_, magic) in _FILES.items()}
    for split in ("train", "test"):
        x_path, y_path = paths[f"x_{split}"], paths[f"y_{split}"]
        n_x, n_y = len(arrays[f"x_{split}"]), len(arrays[f"y_{split}"])
        if n_x != n_y:
            raise AutopruneError(
                f"dataset '{name}': {x_path} holds {n_x} images but {y_path} holds {n_y} "
                "labels; the files do not belong together, re-download them"
            )
    return arrays["x_train"], arrays["y_train"], arrays["x_test"], arrays["y_test"]
