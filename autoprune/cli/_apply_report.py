"""The table ``autoprune apply`` prints: each metric with its unit and where it comes from."""

from __future__ import annotations

from typing import Any

from rich.table import Table

from autoprune.cli._console import console, err_console, print_table
from autoprune.cli._search_report import policy_table
from autoprune.cli._units import energy_note, origin, provenance
from autoprune.cost import HardwareProfile
from autoprune.deploy.apply import ApplyResult

MEASURED_HERE = "measured (ONNX Runtime, this machine)"


def metric_labels(profile: HardwareProfile) -> dict[str, str]:
    """Display names of the report's keys: predicted and measured latency kept apart."""
    return {
        "macs": "macs",
        "params": "params",
        "energy": f"energy mJ ({provenance(profile, 'energy')})",
        "predicted_latency_ms": f"latency ms, predicted ({provenance(profile, 'latency')})",
        "onnx_latency_ms": f"latency ms, {MEASURED_HERE}",
        "int8_onnx_latency_ms": f"int8 latency ms, {MEASURED_HERE}",
        "size_bytes": "size bytes (fp32 vs .apz)",
    }


def report_json(result: ApplyResult, profile: HardwareProfile) -> dict[str, Any]:
    """``apply --json``: the result with the profile, whether each cost is measured, and
    each layer as applied (effective: coupled layers follow their controller)."""
    return {
        **result.to_dict(),
        "profile": {
            "name": profile.name,
            "predicted_latency_ms": origin(profile, "latency"),
            "energy": origin(profile, "energy"),
            "onnx_latency_ms": "measured",
        },
        "units": {"energy": "mJ", "latency": "ms", "size_bytes": "bytes"},
        "layers": {name: layer.to_dict() for name, layer in result.layers.items()},
    }


def print_apply_report(result: ApplyResult, title: str, profile: HardwareProfile) -> None:
    """The before/after table, the policy each layer really got, then a warning if
    measurement and prediction disagree."""
    labels = metric_labels(profile)
    table = Table(title=title)
    for column in ("metric", "original", "compressed", "ratio"):
        table.add_column(column, justify="left" if column == "metric" else "right")
    for key, *values in result.rows():
        table.add_row(labels.get(key, key), *values)
    print_table(table)
    note = energy_note(result.original, result.compressed, profile, size_key="size_bytes")
    if note is not None:
        console.print(note, soft_wrap=True, highlight=False)
    if result.layers:
        print_table(policy_table(result.layers, "policy as applied (effective per layer)"))
    warn_latency_disagreement(result, profile)


def warn_latency_disagreement(result: ApplyResult, profile: HardwareProfile) -> None:
    """One warning line (stderr) when :func:`latency_disagreement` finds one."""
    warning = latency_disagreement(result, profile)
    if warning:
        err_console.print(f"[yellow]warning:[/] {warning}", highlight=False, soft_wrap=True)


def latency_disagreement(result: ApplyResult, profile: HardwareProfile) -> str | None:
    """A sentence when the measured ONNX latency rose while the prediction says it fell."""
    measured = _ratio(result, "onnx_latency_ms")
    predicted = _ratio(result, "predicted_latency_ms")
    if measured is None or predicted is None or not (measured > 1.0 > predicted):
        return None
    advice = (
        "that prediction is for the modelled hardware, not this CPU: search with "
        "--profile cpu to rank policies by latency measured here"
        if profile.kind != "measured"
        else "the latency table may be stale or the machine was busy: re-run apply"
    )
    return (
        f"measured ONNX latency rose {measured:.3g}x on this machine while the predicted "
        f"latency ({provenance(profile, 'latency')}) fell to {predicted:.3g}x; {advice}"
    )


def _ratio(result: ApplyResult, key: str) -> float | None:
    before, after = result.original.get(key), result.compressed.get(key)
    if not before or after is None:
        return None
    return after / before
