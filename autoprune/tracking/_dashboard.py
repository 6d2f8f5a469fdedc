"""What a search shows in the MLflow UI: per-episode metrics, summary tags, provenance.

Three kinds of values, three places (so the UI draws a chart only where there is a curve):

* **per episode** (metrics at ``step=episode``): :func:`episode_values`;
* **once per search** (run tags ``best.*``, ``baseline.*``, ``search.*``, mutable so a
  resumed search overwrites them): :func:`summary_tags`;
* **what produced it** (params ``provenance.*``): :func:`provenance_params`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from autoprune.core.results import EpisodeRecord, SearchResult
from autoprune.tracking._params import git_sha

EPISODE_METRICS = (
    "accuracy",
    "accuracy_drop",
    "latency",
    "energy",
    "size",
    "macs",
    "params",
    "bits",
)
"""Keys of :attr:`EpisodeRecord.metrics` logged per episode (missing ones are skipped);
every ``budget_use_<metric>`` key (one per budget target) is logged too."""
BUDGET_USE_PREFIX = "budget_use_"
RATIO_METRICS = ("macs", "size", "latency", "energy", "params")
"""Metrics also logged per episode as ``<metric>_ratio``: the value over the baseline's."""
VERSIONED_PACKAGES = (
    "autoprune",
    "torch",
    "torch-pruning",
    "stable-baselines3",
    "gymnasium",
    "optuna",
    "mlflow",
    "onnxruntime",
    "numpy",
)
"""Packages whose installed version is recorded as ``provenance.version.<package>``."""


def episode_values(
    record: EpisodeRecord, best_so_far: float, baseline: Mapping[str, float] | None = None
) -> dict[str, float]:
    """The metrics of one episode: reward, feasible (0/1), eval_seconds, best_accuracy
    (best feasible accuracy so far, when there is one), :data:`EPISODE_METRICS`, every
    ``budget_use_<metric>`` and, given the ``baseline``, ``<metric>_ratio``.

    Example:
        >>> values = episode_values(record, 0.9, {"macs": 2e5})  # doctest: +SKIP
        >>> values["macs_ratio"], values["budget_use_macs"]  # doctest: +SKIP
        (0.5, 1.0)
    """
    metrics = record.metrics
    values = {
        "reward": record.reward,
        "feasible": float(record.feasible),
        "eval_seconds": record.seconds,
    }
    if math.isfinite(best_so_far):
        values["best_accuracy"] = best_so_far
    values.update({k: metrics[k] for k in EPISODE_METRICS if k in metrics})
    values.update({k: v for k, v in metrics.items() if k.startswith(BUDGET_USE_PREFIX)})
    for key in RATIO_METRICS:
        reference = (baseline or {}).get(key)
        if key in metrics and reference:
            values[f"{key}_ratio"] = metrics[key] / reference
    return {k: float(v) for k, v in values.items() if v is not None and math.isfinite(v)}


def summary_tags(result: SearchResult) -> dict[str, str]:
    """One-off values of a finished search as run tags (shown on the run's overview page,
    and as columns of the runs table): ``best.*`` (the best feasible episode: ``episode``,
    ``reward``, its metrics and budget use), ``baseline.*``, and ``search.*`` (``method``,
    ``evaluations``, ``feasible``, ``seconds``). ``best.found`` is false when no episode
    met the budget."""
    history = result.history
    tags: dict[str, Any] = {
        "search.method": result.method,
        "search.evaluations": len(history),
        "search.feasible": sum(r.feasible for r in history),
        "search.seconds": round(result.seconds, 3),
    }
    tags.update({f"baseline.{k}": _number(v) for k, v in result.baseline_metrics.items()})
    best = result.best
    tags["best.found"] = "true" if best is not None else "false"
    if best is not None:
        tags["best.episode"] = best.index
        tags["best.reward"] = _number(best.reward)
        tags.update({f"best.{k}": _number(v) for k, v in best.metrics.items()})
        for key in RATIO_METRICS:
            reference = result.baseline_metrics.get(key)
            if key in best.metrics and reference:
                tags[f"best.{key}_ratio"] = _number(best.metrics[key] / reference)
    return {k: str(v) for k, v in tags.items()}


def best_values(result: SearchResult) -> dict[str, float]:
    """The best feasible episode's accuracy, reward, accuracy drop, budget use and cost
    ratios (empty when no episode met the budget): what a ``compare`` parent shows per
    method."""
    best = result.best
    if best is None:
        return {}
    values = {"accuracy": best.metrics["accuracy"], "reward": best.reward}
    keys = ("accuracy_drop", *(k for k in best.metrics if k.startswith(BUDGET_USE_PREFIX)))
    values.update({k: best.metrics[k] for k in keys if k in best.metrics})
    for key in RATIO_METRICS:
        reference = result.baseline_metrics.get(key)
        if key in best.metrics and reference:
            values[f"{key}_ratio"] = best.metrics[key] / reference
    return values


def provenance_params(weights: str | Path | None) -> dict[str, dict[str, Any]]:
    """``provenance.weights`` (the baseline checkpoint searched, absolute; ``none`` when
    unknown), ``provenance.git_commit`` (of the autoprune checkout; ``unknown`` for an
    installed package or without git) and ``provenance.version.<package>`` for each
    installed package of :data:`VERSIONED_PACKAGES`, nested for :func:`flatten_params`."""
    return {
        "provenance": {
            "weights": str(Path(weights).resolve()) if weights is not None else "none",
            "git_commit": autoprune_commit() or "unknown",
            "version": dict(_versions(VERSIONED_PACKAGES)),
        }
    }


def autoprune_commit() -> str | None:
    """The git commit of the autoprune source checkout this code runs from, or None (an
    installed package, no git, or git slower than 5 s)."""
    root = Path(__file__).resolve().parents[2]
    if not (root / "pyproject.toml").is_file() or not (root / "autoprune").is_dir():
        return None
    return git_sha(root)


def _versions(packages: Iterable[str]) -> Iterable[tuple[str, str]]:
    for package in packages:
        try:
            yield package, version(package)
        except PackageNotFoundError:
            continue


def _number(value: float) -> str:
    """A tag value: integers without a decimal point, others to 6 significant digits."""
    value = float(value)
    return str(int(value)) if value.is_integer() else f"{value:.6g}"
