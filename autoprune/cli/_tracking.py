"""CLI glue between commands and :mod:`autoprune.tracking` (MLflow)."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from autoprune.latency import LatencyValidation
from autoprune.tracking import SearchTracker, git_sha, tracking_location

__all__ = ["log_validation", "tracking_location"]


def log_validation(
    summary: dict[str, Any],
    result: LatencyValidation,
    tracking_uri: str | None,
    runs_dir: Path,
    run_name: str,
) -> str:
    """Log a latency validation (params, Spearman/MAPE, a scatter plot); return the run id."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tracker = SearchTracker(tracking_location(tracking_uri, runs_dir), run_name=run_name)
    tags = {"kind": "cost-validate", "model": summary["model"], "git_sha": git_sha()}
    with tracker.start({"profile": summary["profile"], "samples": summary["n"]}, tags) as run:
        tracker.log_metrics(
            {"spearman": summary["spearman"], "mape_percent": summary["mape_percent"]}, step=0
        )
        with tempfile.TemporaryDirectory() as tmp:
            figure, axis = plt.subplots(figsize=(5, 5))
            axis.scatter(result.measured_ms, result.predicted_ms, s=14)
            top = max(result.measured_ms + result.predicted_ms)
            axis.plot([0, top], [0, top], color="grey", linewidth=1)
            axis.set_xlabel("measured latency (ms)")
            axis.set_ylabel("predicted latency (ms)")
            axis.set_title(f"{summary['model']} on {summary['profile']}")
            path = Path(tmp) / "latency_validation.png"
            figure.savefig(path, dpi=110, bbox_inches="tight")
            plt.close(figure)
            tracker.log_artifact(path)
    return run
