"""Dataset names and :func:`load_dataset`, the one entry point of the package."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from autoprune.core.errors import AutopruneError, unknown_name
from autoprune.core.splits import DataSplits
from autoprune.data._cifar import read_cifar10
from autoprune.data._digits import read_digits
from autoprune.data._folder import FOLDER_PREFIX, read_folder
from autoprune.data._idx import read_idx_dataset
from autoprune.data._npz import read_npz
from autoprune.data._objects import OBJECT_PREFIX
from autoprune.data._prepare import build_splits, check_val_args
from autoprune.data._user import read_user

RawArrays = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]

_READERS: dict[str, Callable[[str | Path | None], RawArrays]] = {
    "digits": lambda _data_dir: read_digits(),
    "fashion-mnist": lambda data_dir: read_idx_dataset("fashion-mnist", data_dir),
    "mnist": lambda data_dir: read_idx_dataset("mnist", data_dir),
    "cifar10": read_cifar10,
}
_NUM_CLASSES = {"digits": 10, "fashion-mnist": 10, "mnist": 10, "cifar10": 10}
NPZ_PREFIX = "npz:"


def dataset_names() -> list[str]:
    """Names of the built-in datasets (``folder:PATH``, ``npz:PATH`` and
    ``FILE.py:FUNCTION`` also work)."""
    return sorted(_READERS)


def load_dataset(
    name: str,
    *,
    data_dir: str | Path | None = None,
    val_size: int | float = 0.1,
    seed: int = 0,
) -> DataSplits:
    """Load a dataset as normalised train / validation / test splits.

    Args:
        name: A built-in name (:func:`dataset_names`), ``npz:PATH`` or a user function
            ``path/to/file.py:function`` / ``package.module:function``.
        data_dir: Folder of the on-disk files (ignored by ``digits``, ``npz:`` and functions);
            None uses :data:`DEFAULT_DATA_DIRS`.
        val_size: Validation samples carved from the training set: a count, or a fraction.
        seed: Seed of the validation carve-out (never affects the test split).

    Example:
        >>> splits = load_dataset("digits", val_size=0.25, seed=1)
        >>> splits.input_shape, splits.num_classes, len(splits.y_test)
        ((1, 8, 8), 10, 360)
    """
    check_val_args(val_size, seed)
    if not isinstance(name, str) or not name.strip():
        raise AutopruneError(f"dataset name must be a non-empty string, got {name!r}")
    name = name.strip()
    if name.startswith(FOLDER_PREFIX):
        return read_folder(name[len(FOLDER_PREFIX) :], val_size=val_size, seed=seed)
    if name.startswith(OBJECT_PREFIX):
        raise AutopruneError(
            f"dataset '{name}' was a Python object, which a run cannot reload by name; pass "
            "the same data as data= from Python"
        )
    if name.startswith(NPZ_PREFIX):
        arrays = read_npz(name[len(NPZ_PREFIX) :])
        return build_splits(name, *arrays, val_size=val_size, seed=seed)
    key = name.lower().replace("_", "-")
    if key in _READERS:
        arrays = _READERS[key](data_dir)
        return build_splits(
            key, *arrays, val_size=val_size, seed=seed, num_classes=_NUM_CLASSES[key]
        )
    if ":" in name:
        return read_user(name, val_size=val_size, seed=seed)
    raise AutopruneError(
        f"{unknown_name('dataset', name, dataset_names())}, "
        "or folder:PATH, npz:PATH, path/to/file.py:function, package.module:function"
    )
