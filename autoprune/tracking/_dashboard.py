"""What a search shows in the MLflow UI: per-episode metrics, summary tags, provenance.

Three kinds of values, three places (so the UI draws a chart only where there is a curve):

* **per episode** (metrics at ``step=episode``): :func:`episode_values`;
* **once per search** (run tags ``best.*``, ``baseline.*``, ``search.*``, mutable so a
  resumed search overwrites them): :func:`summary_tags`;
* **what produced it** (params ``provenance.*``): :func:`provenance_params`.
"""

from __future__ import annotations

import json
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
        "search.distinct_policies": result.distinct_policies,
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
        use = budget_use(best.metrics)
        if use is not None:
            tags["best.budget_use"] = _number(use)
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


NOTE_TAG = "mlflow.note.content"
"""The run tag MLflow's UI shows as the run's description (markdown)."""
VIEW_KEY = "autoprune"
"""Share key of the runs-table view that :func:`runs_view_state` describes."""
VIEW_TAG = f"mlflow.sharedViewState.{VIEW_KEY}"
"""Experiment tag holding that view; ``?viewStateShareKey=autoprune`` loads it."""
RUNS_COLUMNS = (
    "search.method",
    "targets",
    "best.accuracy",
    "best.budget_use",
    "search.distinct_policies",
    "best.found",
)
"""Tags shown as columns of the runs table by the shared view (state is the run's icon)."""
_NOTE_LAYERS = 24
"""Layers listed in a run description; longer models end with a pointer to the policy."""


def runs_view_state() -> str:
    """The runs-table view (MLflow's shared-view JSON) whose columns are
    :data:`RUNS_COLUMNS`, stored as the experiment tag :data:`VIEW_TAG`."""
    columns = [f"tags.`{key}`" for key in RUNS_COLUMNS]
    return json.dumps({"selectedColumns": columns, "columnOrder": columns})


def budget_use(metrics: Mapping[str, float]) -> float | None:
    """The largest ``budget_use_<metric>`` (1.0 = at the tightest limit), or None."""
    uses = [v for k, v in metrics.items() if k.startswith(BUDGET_USE_PREFIX)]
    return max(uses) if uses else None


def run_description(result: SearchResult, targets: str | None = None) -> str:
    """Markdown for the run page's description: method, target, best accuracy, budget use,
    distinct policies and the best policy's per-layer keep ratio and bits."""
    best = result.best
    lines = [f"**{result.method}** search, target `{targets or '-'}`", ""]
    if best is None:
        lines.append(f"No feasible policy in {len(result.history)} evaluations.")
        return "\n".join(lines)
    use = budget_use(best.metrics)
    base = result.baseline_metrics.get("accuracy")
    accuracy = f"{best.metrics.get('accuracy', float('nan')):.4f}"
    if base is not None:
        accuracy += f" (original {base:.4f})"
    lines += [
        f"- best accuracy: {accuracy}, episode {best.index}",
        f"- budget use: {'-' if use is None else f'{use:.3f}'} (1.0 = the limit)",
        f"- evaluations: {len(result.history)}, distinct policies: {result.distinct_policies}",
        "",
        *_layer_rows(best),
    ]
    return "\n".join(lines)


def _layer_rows(best: EpisodeRecord) -> list[str]:
    """The best policy as a markdown table: layer, keep, w bits, a bits, sparsity."""
    layers = best.policy.effective_layers()
    rows = ["| layer | keep | w bits | a bits | sparsity |", "|---|---:|---:|---:|---:|"]
    for name, lp in list(layers.items())[:_NOTE_LAYERS]:
        bits = [("fp32" if b == 32 else str(b)) for b in (lp.w_bits, lp.a_bits)]
        rows.append(
            f"| `{lp.label(name)}` | {lp.keep_ratio:.2f} | {' | '.join(bits)} | {lp.sparsity:.2f} |"
        )
    if len(layers) > _NOTE_LAYERS:
        rows.append(f"\n{len(layers) - _NOTE_LAYERS} more layers in `best_policy.json`.")
    return rows


UI_ADDRESS = "http://127.0.0.1:5000"
"""Where ``autoprune ui`` serves by default."""
_MODEL_TRAINING = "workflowType=machine_learning"
"""MLflow 3's URL switch to its "Model training" view (it opens in GenAI otherwise)."""


def dashboard_url(
    experiment_id: str | None = None, run_id: str | None = None, base: str = UI_ADDRESS
) -> str:
    """The UI's page for a run, an experiment's runs (with the :data:`VIEW_KEY` columns) or
    the experiment list, always in MLflow 3's "Model training" view.

    Example:
        >>> dashboard_url("1", "abc")
        'http://127.0.0.1:5000/#/experiments/1/runs/abc?workflowType=machine_learning'
    """
    if experiment_id is None:
        return f"{base}/#/experiments?{_MODEL_TRAINING}"
    page = f"{base}/#/experiments/{experiment_id}"
    if run_id is not None:
        return f"{page}/runs/{run_id}?{_MODEL_TRAINING}"
    return f"{page}/runs?{_MODEL_TRAINING}&viewStateShareKey={VIEW_KEY}"


def run_page_url(run_id: str, tracking_uri: str | None) -> str | None:
    """The dashboard page of ``run_id``: on the tracking server for an ``http(s)`` store,
    else where ``autoprune ui`` serves by default; None when the store lacks the run."""
    from autoprune.tracking._location import TrackingStore, make_client

    try:
        store = TrackingStore.resolve(tracking_uri)
        experiment_id = make_client(store.uri).get_run(run_id).info.experiment_id
    except Exception:  # a store that is gone or a run it lacks: print no link
        return None
    base = store.uri if store.is_remote else UI_ADDRESS
    return dashboard_url(str(experiment_id), run_id, base=base)
