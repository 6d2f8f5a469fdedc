"""User datasets stored as one NumPy ``.npz`` file."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from autoprune.core.errors import AutopruneError
from autoprune.system.npz_files import memory_bytes, read_headers

ARRAYS = ("x_train", "y_train", "x_test", "y_test")
"""Arrays an ``npz:`` dataset file must hold."""
_READ_ERRORS = (OSError, EOFError, zipfile.BadZipFile, ValueError)


def _unreadable(path: Path, reason: object) -> AutopruneError:
    return AutopruneError(
        f"{path}: not a readable .npz file ({reason}); write it with "
        "np.savez(path, x_train=..., y_train=..., x_test=..., y_test=...)"
    )


def read_npz(path: str | Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Read ``x_train, y_train, x_test, y_test`` from a ``.npz`` file.

    Images may be ``(N, H, W)`` or ``(N, C, H, W)``; uint8 images are scaled to [0, 1].
    Labels are class indices ``0..K-1``. Object (pickled) arrays are refused.

    Args:
        path: The file, e.g. written by ``np.savez(path, x_train=..., y_train=..., ...)``.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise AutopruneError(
            f"npz dataset file {path} does not exist; give an existing file as npz:PATH"
        )
    if not zipfile.is_zipfile(path):
        with path.open("rb") as handle:
            single = handle.read(6) == b"\x93NUMPY"
        raise _unreadable(
            path, "it holds a single array, not named arrays" if single else "not a zip archive"
        )
    try:
        read_headers(path, memory_bytes() // 2)  # sizes checked before any allocation
    except AutopruneError as exc:
        raise _unreadable(path, exc) from None
    try:
        npz = np.load(path, allow_pickle=False)
    except _READ_ERRORS as exc:
        raise _unreadable(path, exc) from None
    if not isinstance(npz, np.lib.npyio.NpzFile):
        raise _unreadable(path, "it holds a single array, not named arrays")
    with npz:
        missing = [key for key in ARRAYS if key not in npz.files]
        if missing:
            found = ", ".join(npz.files) or "none"
            raise AutopruneError(
                f"{path}: missing array(s) {', '.join(missing)} (found: {found}); save it with "
                "np.savez(path, x_train=..., y_train=..., x_test=..., y_test=...)"
            )
        try:
            x_train, y_train, x_test, y_test = (npz[key] for key in ARRAYS)
        except _READ_ERRORS as exc:
            raise _unreadable(path, exc) from None
    return x_train, y_train, x_test, y_test
