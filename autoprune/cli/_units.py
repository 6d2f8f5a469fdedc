"""Units and provenance of the costs the CLI prints: ``latency ms (cpu, measured)``."""

from __future__ import annotations

from autoprune.cost import HardwareProfile

UNITS = {"latency": "ms", "energy": "mJ", "size": "bytes", "bits": "bits"}
"""Unit of each cost metric (MACs and parameters are counts)."""


def origin(profile: HardwareProfile, metric: str) -> str:
    """``measured`` or ``modelled``: how ``profile`` prices ``metric``.

    Only the latency of a measured profile is measured (per-layer timings on this machine);
    energy always comes from the modelled Horowitz 45 nm table.

    Example:
        >>> from autoprune.cost import load_profile
        >>> origin(load_profile("cpu"), "latency"), origin(load_profile("cpu"), "energy")
        ('measured', 'modelled')
    """
    return "measured" if profile.kind == "measured" and metric == "latency" else "modelled"


def provenance(profile: HardwareProfile, metric: str) -> str:
    """Profile name and whether ``metric`` is measured or modelled on it.

    Example:
        >>> from autoprune.cost import load_profile
        >>> provenance(load_profile("bitfusion"), "latency")
        'bitfusion, modelled'
    """
    return f"{profile.name}, {origin(profile, metric)}"


def metric_label(metric: str, profile: HardwareProfile | None = None) -> str:
    """``metric`` with its unit, and for latency and energy the profile's provenance.

    Example:
        >>> from autoprune.cost import load_profile
        >>> metric_label("energy", load_profile("cpu"))
        'energy mJ (cpu, modelled)'
    """
    unit = UNITS.get(metric)
    label = f"{metric} {unit}" if unit else metric
    if profile is not None and metric in ("latency", "energy"):
        label += f" ({provenance(profile, metric)})"
    return label
