"""Turn a hardware profile into the cost model that prices it."""

from __future__ import annotations

from pathlib import Path

from autoprune.cost import CostModel, HardwareProfile, RooflineCostModel
from autoprune.latency._lut import LatencyTable
from autoprune.latency._measured import MeasuredCostModel


def build_cost_model(profile: HardwareProfile, *, lut_cache_dir: Path | None = None) -> CostModel:
    """The cost model for ``profile``.

    Args:
        profile: A loaded profile (see :func:`load_profile`).
        lut_cache_dir: Folder of the measured latency tables (measured profiles only);
            ``None`` keeps measurements in memory for the life of the model.

    Example:
        >>> from autoprune.cost import load_profile
        >>> type(build_cost_model(load_profile("mobile-cpu"))).__name__
        'RooflineCostModel'
    """
    if profile.kind == "roofline":
        return RooflineCostModel(profile)
    table = LatencyTable(profile.measurement, lut_cache_dir, batch_size=profile.batch_size)
    return MeasuredCostModel(profile, table)
