"""Where on-disk datasets are looked for, and the error raised when they are not there."""

from __future__ import annotations

from pathlib import Path

from autoprune.core.errors import AutopruneError

DEFAULT_DATA_DIRS: dict[str, Path] = {
    "fashion-mnist": Path("/usr/share/datasets/fashion-mnist"),
}
"""Folder used for a dataset when no ``data_dir`` is given (the Debian package layout)."""

_INSTALL_HINTS: dict[str, str] = {
    "fashion-mnist": "install it with `apt-get install dataset-fashion-mnist`, or",
    "mnist": "download the four MNIST IDX files (raw or .gz) and",
    "cifar10": "download and unpack cifar-10-python.tar.gz from "
    "https://www.cs.toronto.edu/~kriz/cifar.html, then",
}


def search_dirs(name: str, data_dir: str | Path | None, subdirs: tuple[str, ...]) -> list[Path]:
    """Folders to search for dataset ``name``, most specific first.

    Args:
        name: Registry name, e.g. ``fashion-mnist``.
        data_dir: Folder given by the user, or None for :data:`DEFAULT_DATA_DIRS`.
        subdirs: Sub-folders of ``data_dir`` that may hold the files (e.g. the dataset name).

    Returns:
        ``data_dir`` itself followed by ``data_dir/sub`` for each of ``subdirs``; only the
        default folder (or nothing) when ``data_dir`` is None.
    """
    if data_dir is None:
        default = DEFAULT_DATA_DIRS.get(name)
        return [] if default is None else [default]
    root = Path(data_dir).expanduser()
    return [root, *(root / sub for sub in subdirs)]


def missing_data_error(name: str, what: str, looked_in: list[Path]) -> AutopruneError:
    """One-line error for a dataset whose files are not found.

    Args:
        name: Registry name of the dataset.
        what: The file or folder that was looked for.
        looked_in: The folders searched (may be empty when there is no default folder).
    """
    where = ", ".join(str(p) for p in looked_in) if looked_in else "nowhere (no default folder)"
    hint = _INSTALL_HINTS.get(name, "put the files in a folder and")
    return AutopruneError(
        f"dataset '{name}': cannot find {what} (looked in {where}); {hint} "
        "pass --data-dir DIR (or set AUTOPRUNE_DATA_DIR) naming the folder that holds it"
    )
