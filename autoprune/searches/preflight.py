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

from autoprune.core.errors import AutopruneError
from autoprune.cost import load_profile
from autoprune.data import DataSplits
from autoprune.tracking import TrackingStore, tracking_location
from autoprune.workflow.config import SearchConfig
from autoprune.workflow.session import (
    load_search_data,
    needs_training,
    search_budget,
    untrained_session,
)

RUNS_SUBFOLDERS = ("checkpoints", "searches", "mlflow", "latency_lut")
"""Folders under ``runs_dir`` a search writes into (checked when they exist)."""


def check_writable(folder: Path) -> None:
    """Refuse a runs folder that cannot be created or written (read-only, or a file)."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for path in (folder, *(folder / n for n in RUNS_SUBFOLDERS if (folder / n).is_dir())):
            with tempfile.TemporaryFile(dir=path):
                pass
    except OSError as exc:
        where = exc.filename or folder
        raise AutopruneError(
            f"runs folder {folder} is not writable ({exc.strerror or exc} at {where}); fix its "
            "permissions or pass a writable --runs-dir"
        ) from None


def preflight(
    configs: Sequence[SearchConfig], data_dir: Path | None, *, resume: str | None = None
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
    load_profile(base.profile)
    TrackingStore.resolve(tracking_location(base.tracking_uri, base.runs_path))
    check_writable(base.runs_path)
    if resume is not None:
        check_resume_files(base, resume)
    data = load_search_data(base, data_dir)
    if needs_training(base, data):
        session = untrained_session(base, data)
        for config in configs:
            check_untrained(config, session)
    return data
