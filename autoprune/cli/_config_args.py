"""Turn ``--config`` plus flags into a validated :class:`SearchConfig`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from autoprune.workflow.config import SearchConfig
from autoprune.workflow.config_file import load_config_file


def resolve_config(config_file: Path | None, **flags: Any) -> SearchConfig:
    """YAML file values, overridden by every flag the user gave (None = not given).

    A zoo model named without a dataset (by neither flag nor file) gets its own dataset
    (``fashion-mnist`` for ``vgg_small``), as ``cost`` and ``layers`` do.
    """
    data = load_config_file(config_file) if config_file is not None else {}
    base = SearchConfig.from_mapping(data)
    if flags.get("targets") == []:
        flags["targets"] = None
    if flags.get("targets") is not None:
        flags["targets"] = tuple(flags["targets"])
    if flags.get("dataset") is None and "dataset" not in data:
        from autoprune.models import default_dataset  # imports torch: only when needed

        flags["dataset"] = default_dataset(flags.get("model") or base.model)
    return base.replace(**flags)
