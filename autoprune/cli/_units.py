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


def energy_note(
    original: dict[str, float],
    compressed: dict[str, float],
    profile: HardwareProfile,
    size_key: str = "size",
) -> str | None:
    """Why the energy ratio is below the MACs ratio, when the compressed model's weights fit
    the profile's on-chip memory and the original's do not (SRAM reads instead of DRAM).

    Example:
        >>> from autoprune.cost import load_profile
        >>> chip = load_profile("bitfusion")
        >>> big, small = chip.sram_bytes * 4.0, chip.sram_bytes / 2
        >>> before = {"macs": 100.0, "energy": 1.0, "size": big}
        >>> energy_note(before, {"macs": 50.0, "energy": 0.1, "size": small}, chip)[:31]
        'energy ratio 0.100 is below the'
        >>> energy_note(before, {"macs": 50.0, "energy": 0.5, "size": big}, chip) is None
        True
    """
    try:
        before, after = original[size_key], compressed[size_key]
        energy = compressed["energy"] / original["energy"]
        macs = compressed["macs"] / original["macs"]
    except (KeyError, ZeroDivisionError):
        return None
    sram = profile.sram_bytes
    if not after <= sram < before or energy >= macs:
        return None
    sram_pj = profile.energy.sram_bit_pj(sram)
    dram_pj = profile.energy.dram_pj_per_bit
    return (
        f"energy ratio {energy:.3f} is below the MACs ratio {macs:.3f}: the compressed model "
        f"(about {_kb(after)}) fits the {profile.name} profile's on-chip memory ({_kb(sram)}), "
        f"so its weights are read from SRAM ({sram_pj:.2g} pJ/bit) while the original's "
        f"({_kb(before)}) come from DRAM ({dram_pj:.2g} pJ/bit; Horowitz 45 nm, "
        "autoprune/cost/_energy.py)"
    )


def _kb(size: float) -> str:
    """Bytes as ``12.3 KB``."""
    return f"{size / 1e3:.1f} KB"
