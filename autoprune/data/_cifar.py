"""CIFAR-10 from the standard ``cifar-10-batches-py`` folder of pickled batches."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

from autoprune.core.errors import AutopruneError
from autoprune.data._paths import missing_data_error, search_dirs

BATCH_DIR = "cifar-10-batches-py"
TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_BATCH = "test_batch"
_PIXELS = 3 * 32 * 32


def _field(batch: dict, key: str) -> object:
    """``batch[key]`` under a bytes key (Python 2 pickles) or a str key."""
    for k in (key.encode(), key):
        if k in batch:
            return batch[k]
    raise KeyError(key)


_ARRAY_GLOBALS = frozenset(
    {
        (module, name)
        for module in ("numpy.core.multiarray", "numpy._core.multiarray")
        for name in ("_reconstruct", "scalar")
    }
    | {("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode")}
)
"""The only callables a CIFAR-10 batch refers to: how numpy rebuilds an array."""


class _ArrayUnpickler(pickle.Unpickler):
    """An unpickler that rebuilds numpy arrays, dicts, lists and bytes, and refuses any
    other callable (a planted batch could otherwise run a command when read)."""

    def find_class(self, module: str, name: str) -> object:
        """The class or function ``module.name`` when it is one of :data:`_ARRAY_GLOBALS`."""
        if (module, name) not in _ARRAY_GLOBALS:
            raise pickle.UnpicklingError(
                f"it refers to {module[:60]}.{name[:60]}, which a CIFAR-10 batch never holds "
                "(a pickle that could run code is not loaded)"
            )
        return super().find_class(module, name)


def read_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Read one pickled batch into ``(images (N, 3, 32, 32) uint8, labels (N,) int64)``.

    The batches are Python pickles, read by an unpickler that rebuilds only numpy arrays and
    plain containers: a batch referring to any other callable is refused, never run.
    """
    try:
        with path.open("rb") as f:
            batch = _ArrayUnpickler(f, encoding="bytes").load()
        data = np.asarray(_field(batch, "data"), dtype=np.uint8)
        labels = np.asarray(_field(batch, "labels"), dtype=np.int64)
    except (
        OSError,
        EOFError,
        pickle.UnpicklingError,
        AttributeError,
        ImportError,
        IndexError,
        KeyError,
        TypeError,
        ValueError,
    ) as exc:
        raise AutopruneError(
            f"{path}: not a readable CIFAR-10 batch ({type(exc).__name__}: "
            f"{' '.join(str(exc).split())[:200]}); "
            "re-download and unpack cifar-10-python.tar.gz"
        ) from None
    if data.ndim != 2 or data.shape[1] != _PIXELS or len(data) != len(labels):
        raise AutopruneError(
            f"{path}: data has shape {data.shape} and {len(labels)} labels, expected "
            f"(N, {_PIXELS}) with N labels; re-download and unpack cifar-10-python.tar.gz"
        )
    return data.reshape(-1, 3, 32, 32), labels


def _batch_dir(data_dir: str | Path | None) -> Path:
    """The folder holding the batches: ``data_dir`` itself or its ``cifar-10-batches-py``."""
    dirs = search_dirs("cifar10", data_dir, (BATCH_DIR,))
    for folder in dirs:
        if (folder / TEST_BATCH).is_file():
            return folder
    raise missing_data_error("cifar10", f"{BATCH_DIR}/{TEST_BATCH}", dirs)


def read_cifar10(
    data_dir: str | Path | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Read the five training batches and the test batch.

    Args:
        data_dir: The ``cifar-10-batches-py`` folder or its parent.

    Returns:
        ``(x_train, y_train, x_test, y_test)``; images uint8 ``(N, 3, 32, 32)``.
    """
    folder = _batch_dir(data_dir)
    missing = [b for b in TRAIN_BATCHES if not (folder / b).is_file()]
    if missing:
        raise missing_data_error("cifar10", f"{', '.join(missing)} next to {TEST_BATCH}", [folder])
    train = [read_batch(folder / b) for b in TRAIN_BATCHES]
    x_test, y_test = read_batch(folder / TEST_BATCH)
    x_train = np.concatenate([x for x, _ in train])
    y_train = np.concatenate([y for _, y in train])
    return x_train, y_train, x_test, y_test
