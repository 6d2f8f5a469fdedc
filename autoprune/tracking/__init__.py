"""MLflow tracking of searches: the only part of autoprune that imports MLflow.

MLflow itself is imported on first use (it takes seconds), so importing this package is
cheap. Local stores are SQLite databases (see :class:`TrackingStore`).
"""

from autoprune.tracking._dashboard import (
    EPISODE_METRICS,
    autoprune_commit,
    best_values,
    dashboard_url,
    episode_values,
    provenance_params,
    run_page_url,
    summary_tags,
)
from autoprune.tracking._layers import LAYERS_DIR, LayerTable
from autoprune.tracking._location import (
    DEFAULT_TRACKING_DIR,
    TrackingStore,
    tracking_location,
    ui_command,
)
from autoprune.tracking._params import clean_tags, flatten_params, git_sha
from autoprune.tracking._read import read_best_policy
from autoprune.tracking._tracker import (
    BEST_POLICY_ARTIFACT,
    SUMMARY_ARTIFACT,
    SearchTracker,
    write_result_files,
)

__all__ = [
    "BEST_POLICY_ARTIFACT",
    "DEFAULT_TRACKING_DIR",
    "EPISODE_METRICS",
    "LAYERS_DIR",
    "SUMMARY_ARTIFACT",
    "LayerTable",
    "SearchTracker",
    "TrackingStore",
    "autoprune_commit",
    "best_values",
    "clean_tags",
    "dashboard_url",
    "episode_values",
    "flatten_params",
    "git_sha",
    "provenance_params",
    "run_page_url",
    "summary_tags",
    "read_best_policy",
    "tracking_location",
    "ui_command",
    "write_result_files",
]
