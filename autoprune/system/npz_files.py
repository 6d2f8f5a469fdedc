"""Reading ``.npz`` files that nobody vouches for: no pickled arrays, and every array's
size checked from its header before a byte of it is allocated.

A header may claim any shape; numpy would allocate it before noticing that the file is too
short. Here an array must fit inside its own zip member (so a 47 KB file cannot ask for
15 GiB), and the members together must fit in ``max_bytes`` once inflated (so a compressed
member cannot inflate into gigabytes).
"""

from __future__ import annotations

import math
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from autoprune.core.errors import AutopruneError

MAX_HEADER_BYTES = 10_000
"""Longest ``.npy`` header read (numpy's own default)."""


@dataclass(frozen=True)
class ArrayHeader:
    """What an ``.npy`` member declares, read without reading its data."""

    name: str
    shape: tuple[int, ...]
    dtype: np.dtype
    member_bytes: int

    @property
    def nbytes(self) -> int:
        """Bytes the array's data takes in memory."""
        return math.prod(self.shape) * self.dtype.itemsize


def memory_bytes() -> int:
    """Physical memory of this machine (a large default where the OS does not say)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 1 << 40


def read_headers(path: Path, max_bytes: int) -> dict[str, ArrayHeader]:
    """The headers of every array in the ``.npz`` at ``path``, checked for size.

    Raises:
        AutopruneError: for a file that is not a readable ``.npz``, a pickled (object) array,
            a header claiming more data than its member holds, or more than ``max_bytes``
            of data in all.
    """
    headers: dict[str, ArrayHeader] = {}
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
            inflated = sum(info.file_size for info in members)
            if inflated > max_bytes:
                raise AutopruneError(
                    f"{path} would inflate to {inflated:,} bytes, more than the {max_bytes:,} "
                    "allowed; give a smaller file (or one that is not a zip bomb)"
                )
            for info in members:
                header = _header(archive, info)
                headers[header.name] = header
    except (OSError, EOFError, zipfile.BadZipFile, ValueError) as exc:
        if isinstance(exc, AutopruneError):
            raise
        reason = " ".join(str(exc).split())[:120]
        raise AutopruneError(f"{path} is not a readable .npz file ({reason})") from None
    return headers


def _header(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> ArrayHeader:
    """The checked header of one member."""
    name = info.filename.removesuffix(".npy")
    with archive.open(info) as handle:
        version = np.lib.format.read_magic(handle)
        read = (
            np.lib.format.read_array_header_1_0
            if version == (1, 0)
            else np.lib.format.read_array_header_2_0
        )
        shape, _, dtype = read(handle, max_header_size=MAX_HEADER_BYTES)
        offset = handle.tell()
    if dtype.hasobject:
        raise AutopruneError(
            f"array '{name}' holds Python objects (pickles), which are never loaded; save "
            "plain numeric arrays"
        )
    header = ArrayHeader(name, tuple(int(n) for n in shape), dtype, info.file_size)
    if header.nbytes > info.file_size - offset:
        raise AutopruneError(
            f"array '{name}' claims {header.nbytes:,} bytes but its member holds only "
            f"{info.file_size - offset:,}; the file is damaged or forged, replace it"
        )
    return header


def read_arrays(path: Path, max_bytes: int) -> dict[str, np.ndarray]:
    """Every array of the ``.npz`` at ``path``, after :func:`read_headers` checked them."""
    read_headers(path, max_bytes)
    try:
        with np.load(path, allow_pickle=False) as npz:
            return {name: npz[name] for name in npz.files}
    except (OSError, EOFError, zipfile.BadZipFile, ValueError) as exc:
        reason = " ".join(str(exc).split())[:120]
        raise AutopruneError(f"{path} is not a readable .npz file ({reason})") from None
