"""What ``autoprune search`` prints at the end: best policy, its costs with units, and paths."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from rich.table import Table

from autoprune.cli._console import console, print_table
from autoprune.cli._units import UNITS, energy_note, metric_label, origin
from autoprune.core.effective import FOLLOW_MARK, EffectiveLayer
from autoprune.core.results import SearchResult
from autoprune.cost import HardwareProfile

METRICS = ("accuracy", "macs", "params", "size", "latency", "energy")
"""Rows of the metrics table, in order."""


def print_result(
    result: SearchResult,
    files: dict[str, Path],
    run_id: str,
    as_json: bool,
    *,
    weights: Path | None,
    profile: HardwareProfile,
) -> None:
    """Best policy, its metrics (with units and profile) and where everything is.

    ``weights`` is the trained state dict the search compressed: the file ``autoprune apply
    --weights`` needs.
    """
    if as_json:
        print(json.dumps(_summary(result, files, run_id, weights, profile), indent=2))
        return
    best = result.best
    if best is None:
        console.print(_infeasible_note(result), soft_wrap=True, highlight=False)
    else:
        title = f"best policy ({result.method}, episode {best.index})"
        print_table(policy_table(best.policy.effective_layers(), title))
        print_table(_metrics_table(result, profile))
        note = energy_note(result.baseline_metrics, best.metrics, profile)
        if note is not None:
            console.print(note, soft_wrap=True, highlight=False)
    lines = [
        f"searched:   {len(result.history)} evaluations, {result.distinct_policies} distinct "
        "policies",
        f"MLflow run: {run_id}",
        f"dashboard:  {_run_url(run_id, files)}   (serve it: autoprune ui)",
        f"results:    {_run_folder(files)}",
        f"policy:     {files.get('best_policy.json', '-')}",
    ]
    if weights is not None:
        lines.append(f"weights:    {weights}   (for autoprune apply --weights)")
    for line in lines:
        console.print(line, soft_wrap=True, highlight=False)


def _run_url(run_id: str, files: dict[str, Path]) -> str:
    """The run's dashboard page, found from the tracking URI that ``summary.json`` records."""
    from autoprune.tracking import run_page_url

    summary = files.get("summary.json")
    uri = json.loads(summary.read_text()).get("tracking_uri") if summary else None
    return run_page_url(run_id, uri) or "its Experiments page"


def _infeasible_note(result: SearchResult) -> str:
    """No feasible policy: how far the closest one missed each limit, and what to change."""
    note = "[yellow]no feasible policy was found[/]"

    def worst(record: Any) -> float:
        uses = [v for k, v in record.metrics.items() if k.startswith("budget_use_")]
        return max(uses, default=float("inf"))

    if not result.history:
        return note
    closest = min(result.history, key=worst)
    over = [
        f"{key.removeprefix('budget_use_')} {100 * (use - 1):.1f}% over"
        for key, use in closest.metrics.items()
        if key.startswith("budget_use_") and use > 1
    ]
    more = "" if _one_shot(result.method) else ", or search longer"
    return (
        f"{note}: the closest (episode {closest.index}) is {', '.join(over)} its limit; raise "
        f"that --target by as much{more}"
    )


def _one_shot(method: str) -> bool:
    """Whether ``method`` makes a single policy (searching longer cannot help)."""
    from agents import method_class, method_names

    return method in method_names() and method_class(method).fixed_evaluations is not None


def policy_table(layers: Mapping[str, EffectiveLayer], title: str) -> Table:
    """One row per layer with what it really gets; a coupled layer is ``name ↳ controller``."""
    table = Table(title=title)
    for column in ("layer", "keep", "w bits", "a bits", "sparsity"):
        table.add_column(column, justify="left" if column == "layer" else "right")
    for name, lp in layers.items():
        row = (f"{lp.keep_ratio:.2f}", _bits(lp.w_bits), _bits(lp.a_bits), f"{lp.sparsity:.2f}")
        table.add_row(lp.label(name), *row)
    if any(lp.follows for lp in layers.values()):
        table.caption = f"{FOLLOW_MARK} X: channels follow layer X (residual add or depthwise)"
    return table


def _metrics_table(result: SearchResult, profile: HardwareProfile) -> Table:
    assert result.best is not None
    best, base = result.best.metrics, result.baseline_metrics
    table = Table(title="metrics (validation accuracy; predicted costs)")
    for column in ("metric", "original", "best", "ratio"):
        table.add_column(column, justify="left" if column == "metric" else "right")
    for key in METRICS:
        if key in best and key in base:
            ratio = best[key] / base[key] if base[key] else float("nan")
            label = metric_label(key, profile)
            table.add_row(label, f"{base[key]:.4g}", f"{best[key]:.4g}", f"{ratio:.3f}")
    return table


def _summary(
    result: SearchResult,
    files: dict[str, Path],
    run_id: str,
    weights: Path | None,
    profile: HardwareProfile,
) -> dict[str, Any]:
    best = result.best
    return {
        "run_id": run_id,
        "method": result.method,
        "evaluations": len(result.history),
        "distinct_policies": result.distinct_policies,
        "seconds": round(result.seconds, 2),
        "weights": None if weights is None else str(weights),
        "profile": {
            "name": profile.name,
            "latency": origin(profile, "latency"),
            "energy": origin(profile, "energy"),
        },
        "units": UNITS,
        "baseline": result.baseline_metrics,
        "best": None
        if best is None
        else {
            "index": best.index,
            "reward": best.reward,
            "metrics": best.metrics,
            "policy": best.policy.to_dict()["layers"],
            "effective": {n: e.to_dict() for n, e in best.policy.effective_layers().items()},
        },
        "files": {k: str(v) for k, v in files.items()},
    }


def _run_folder(files: dict[str, Path]) -> Path | str:
    summary = files.get("summary.json")
    return summary.parent if summary is not None else ""


def _bits(bits: int) -> str:
    return "fp32" if bits == 32 else str(bits)
