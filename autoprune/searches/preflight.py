"""Validate before work: what ``search`` and ``compare`` check before anything slow runs or
anything is written (a baseline trained, a run folder, an MLflow run).

From the config: every value and its type, the method and its options, the importance
criterion, the budget (a fraction above 1 is refused), the hardware profile, the Optuna
storage (opened), the tracking URI's scheme, and a writable runs folder. From the data:
unusable images or labels (``autoprune.data``). From the architecture, when a baseline would
have to be trained first: the user's model builds and runs, the mode has layers to search,
and the budget's floors that do not depend on trained weights are reachable.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path

from autoprune.core.device import resolve_device
from autoprune.core.errors import AutopruneError
from autoprune.cost import load_profile
from autoprune.data import DataSplits
from autoprune.tracking import TrackingStore, tracking_location
from autoprune.workflow.config import SearchConfig
from autoprune.workflow.inputs import UserObjects
from autoprune.workflow.session import (
    load_search_data,
    needs_training,
    search_budget,
    untrained_session,
)

RUNS_SUBFOLDERS = ("checkpoints", "searches", "mlflow", "latency_lut")
"""Folders under ``runs_dir`` a search writes into (checked when they exist)."""


def check_writable(folder: Path) -> None:
    """Refuse a runs folder that cannot be created or written (read-only, or a file),
    without creating it: a search that fails its checks leaves no empty folder behind."""
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent  # the folder is created later, under its nearest ancestor
    try:
        if not existing.is_dir():
            raise NotADirectoryError(20, "not a directory", str(existing))
        subfolders = (folder / n for n in RUNS_SUBFOLDERS if (folder / n).is_dir())
        for path in (existing, *subfolders):
            with tempfile.TemporaryFile(dir=path):
                pass
    except OSError as exc:
        where = exc.filename or folder
        raise AutopruneError(
            f"runs folder {folder} is not writable ({exc.strerror or exc} at {where}); fix its "
            "permissions or pass a writable --runs-dir"
        ) from None


def check_objects(configs: Sequence[SearchConfig], objects: UserObjects) -> None:
    """Refuse settings that need names where the caller gave objects: worker processes
    rebuild the model and data from the config's names."""
    for config in configs:
        parallel = config.workers > 1 or config.backend != "local"
        if parallel and (objects.model is not None or objects.data is not None):
            raise AutopruneError(
                f"workers={config.workers}, backend='{config.backend}': worker processes "
                "rebuild the model and data from names, not from Python objects; search "
                "objects with workers=1 and backend='local', or pass names (file.py:fn)"
            )


def preflight(
    configs: Sequence[SearchConfig],
    data_dir: Path | None,
    *,
    resume: str | None = None,
    objects: UserObjects | None = None,
) -> DataSplits:
    """Check ``configs`` (one search, or the methods of a comparison on the same model and
    data) before any work; the loaded dataset, for the search to reuse. With ``resume``, the
    checkpoint files of that run are read too.

    Raises:
        AutopruneError: For the first problem found, naming it and the fix.
    """
    from agents import check_resume_files, check_settings, check_untrained

    for config in configs:
        check_settings(config)
        search_budget(config)
    base = configs[0]
    resolve_device(base.device)  # CUDA asked for where there is none: before any work
    load_profile(base.profile)
    TrackingStore.resolve(tracking_location(base.tracking_uri, base.runs_path))
    check_writable(base.runs_path)
    if resume is not None:
        check_resume_files(base, resume)
    if objects is not None:
        check_objects(configs, objects)
    data = objects.data if objects is not None and objects.data is not None else None
    data = data if data is not None else load_search_data(base, data_dir)
    if needs_training(base, data, objects):
        session = untrained_session(base, data)
        for config in configs:
            check_untrained(config, session)
    return data
