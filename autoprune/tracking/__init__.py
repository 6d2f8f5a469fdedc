"""MLflow tracking of searches: the only part of autoprune that imports MLflow.

MLflow itself is imported on first use (it takes seconds), so importing this package is
cheap. Local stores are SQLite databases (see :class:`TrackingStore`).
"""

from autoprune.tracking._params import clean_tags, flatten_params, git_sha
from autoprune.tracking._read import read_best_policy
from autoprune.tracking._store import (
    DEFAULT_TRACKING_DIR,
    TrackingStore,
    tracking_location,
    ui_command,
)
from autoprune.tracking._tracker import (
    BEST_POLICY_ARTIFACT,
    EPISODE_METRICS,
    SUMMARY_ARTIFACT,
    SearchTracker,
    write_result_files,
)

__all__ = [
    "BEST_POLICY_ARTIFACT",
    "DEFAULT_TRACKING_DIR",
    "EPISODE_METRICS",
    "SUMMARY_ARTIFACT",
    "SearchTracker",
    "TrackingStore",
    "clean_tags",
    "flatten_params",
    "git_sha",
    "read_best_policy",
    "tracking_location",
    "ui_command",
    "write_result_files",
]
