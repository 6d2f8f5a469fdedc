"""What ``autoprune search`` prints at the end: best policy, its costs with units, and paths."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rich.table import Table

from autoprune.cli._console import console, print_table
from autoprune.cli._units import UNITS, metric_label, origin
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
        console.print("[yellow]no feasible policy was found[/]")
    else:
        table = Table(title=f"best policy ({result.method}, episode {best.index})")
        for column in ("layer", "keep", "w bits", "a bits", "sparsity"):
            table.add_column(column, justify="left" if column == "layer" else "right")
        for name, lp in best.policy.layers.items():
            row = (f"{lp.keep_ratio:.2f}", _bits(lp.w_bits), _bits(lp.a_bits), f"{lp.sparsity:.2f}")
            table.add_row(name, *row)
        print_table(table)
        print_table(_metrics_table(result, profile))
    lines = [
        f"MLflow run: {run_id}   (dashboard: autoprune ui)",
        f"results:    {_run_folder(files)}",
        f"policy:     {files.get('best_policy.json', '-')}",
    ]
    if weights is not None:
        lines.append(f"weights:    {weights}   (for autoprune apply --weights)")
    for line in lines:
        console.print(line, soft_wrap=True, highlight=False)


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
        },
        "files": {k: str(v) for k, v in files.items()},
    }


def _run_folder(files: dict[str, Path]) -> Path | str:
    summary = files.get("summary.json")
    return summary.parent if summary is not None else ""


def _bits(bits: int) -> str:
    return "fp32" if bits == 32 else str(bits)
