"""Option parsing shared by CLI commands (the only code that reads the environment)."""

from __future__ import annotations

import os
from pathlib import Path

from autoprune.data import DataSplits, load_dataset

DATA_DIR_ENV = "AUTOPRUNE_DATA_DIR"


def resolve_data_dir(data_dir: Path | None) -> Path | None:
    """``--data-dir`` wins, then ``$AUTOPRUNE_DATA_DIR``, else the dataset's default."""
    if data_dir is not None:
        return data_dir
    env = os.environ.get(DATA_DIR_ENV)
    return Path(env) if env else None


def open_dataset(name: str, data_dir: Path | None, seed: int = 0) -> DataSplits:
    """Load a dataset for a CLI command."""
    return load_dataset(name, data_dir=resolve_data_dir(data_dir), seed=seed)
