"""Turn a hardware profile into the cost model that prices it."""

from __future__ import annotations

from pathlib import Path

from autoprune.cost._lut import LatencyTable, RuntimeSettings
from autoprune.cost._measured import MeasuredCostModel
from autoprune.cost._profile import HardwareProfile
from autoprune.cost._report import CostModel
from autoprune.cost._roofline import RooflineCostModel


def build_cost_model(profile: HardwareProfile, *, lut_cache_dir: Path | None = None) -> CostModel:
    """The cost model for ``profile``.

    Args:
        profile: A loaded profile (see :func:`load_profile`).
        lut_cache_dir: Folder of the measured latency tables (measured profiles only);
            ``None`` keeps measurements in memory for the life of the model.

    Example:
        >>> from autoprune.cost._profile import load_profile
        >>> type(build_cost_model(load_profile("mobile-cpu"))).__name__
        'RooflineCostModel'
    """
    if profile.kind == "roofline":
        return RooflineCostModel(profile)
    table = LatencyTable(RuntimeSettings.from_profile(profile), lut_cache_dir)
    return MeasuredCostModel(profile, table)
