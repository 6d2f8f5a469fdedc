"""Option parsing shared by CLI commands (the only code that reads the environment)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from autoprune.core.errors import AutopruneError, unknown_name
from autoprune.workflow.config import SearchConfig

if TYPE_CHECKING:
    from autoprune.data import DataSplits

DATA_DIR_ENV = "AUTOPRUNE_DATA_DIR"


def resolve_data_dir(data_dir: Path | None) -> Path | None:
    """``--data-dir`` wins, then ``$AUTOPRUNE_DATA_DIR``, else the dataset's default."""
    if data_dir is not None:
        return data_dir
    env = os.environ.get(DATA_DIR_ENV)
    return Path(env) if env else None


def open_dataset(name: str, data_dir: Path | None, seed: int = 0) -> DataSplits:
    """Load a dataset for a CLI command."""
    from autoprune.data import load_dataset

    return load_dataset(name, data_dir=resolve_data_dir(data_dir), seed=seed)


def dataset_for(model: str, dataset: str | None) -> str:
    """``--dataset``, else the zoo model's own dataset: it sets the input shape.

    Raises:
        AutopruneError: for a user model without ``--dataset``.
    """
    if dataset is not None:
        return dataset
    from autoprune.models import default_dataset, model_names

    default = default_dataset(model)
    if default is None and ":" not in model:
        raise unknown_name("model", model, model_names())
    if default is None:
        raise AutopruneError(
            f"--dataset is required for model '{model}': it sets the input shape; pass e.g. "
            "--dataset fashion-mnist, npz:PATH or path/to/file.py:fn"
        )
    return default


def shape_text(shape: tuple[int, ...]) -> str:
    """``(1, 28, 28)`` as ``1x28x28``."""
    return "x".join(str(int(d)) for d in shape)


def with_data_dir_env(config: SearchConfig) -> SearchConfig:
    """``$AUTOPRUNE_DATA_DIR`` when neither ``--data-dir`` nor the config file names one."""
    if config.data_dir is not None:
        return config
    folder = resolve_data_dir(None)
    return config if folder is None else config.replace(data_dir=str(folder))
