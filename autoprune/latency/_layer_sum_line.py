"""A straight line from summed single-layer timings to whole-model latency, fitted per model.

Single-layer graphs are timed with ONNX Runtime's profiler, which adds a little time to
every node, and a model's executor adds its own per-node cost; neither depends on channel
counts. So ``measured = scale * summed timings + offset`` is fitted once per model on a few
randomly pruned versions of it, then used for every policy.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from autoprune.core.errors import AutopruneError


@dataclass(frozen=True)
class LayerSumLine:
    """How summed layer timings map to a whole model's latency.

    Attributes:
        scale: Measured ms per summed layer ms.
        offset_ms: Fixed time per inference (negative when single-layer timings overstate
            what the layers cost inside the model).
        points: Whole-model measurements the line was fitted on.
    """

    scale: float = 1.0
    offset_ms: float = 0.0
    points: int = 0

    def apply(self, summed_ms: float) -> float:
        """Whole-model latency predicted from summed layer timings.

        Example:
            >>> LayerSumLine(0.8, 0.1, 3).apply(2.0)
            1.7000000000000002
        """
        return self.scale * summed_ms + self.offset_ms


def fit_layer_sum_line(summed_ms: Sequence[float], measured_ms: Sequence[float]) -> LayerSumLine:
    """Least-squares line through ``(summed, measured)``; one point gives an offset only.

    A fitted scale that is not positive (measurements too noisy to tell the models apart)
    falls back to an offset only.

    Example:
        >>> fit_layer_sum_line([1.0, 2.0, 3.0], [1.0, 1.8, 2.6])
        LayerSumLine(scale=0.8, offset_ms=0.2, points=3)
    """
    if len(summed_ms) != len(measured_ms) or not summed_ms:
        raise AutopruneError(
            f"the layer-sum line needs one measurement per prediction (got {len(summed_ms)} and "
            f"{len(measured_ms)}), at least one"
        )
    n = len(summed_ms)
    mean_x = sum(summed_ms) / n
    mean_y = sum(measured_ms) / n
    spread = sum((x - mean_x) ** 2 for x in summed_ms)
    scale = 1.0
    if n > 1 and spread > 0:
        slope = (
            sum((x - mean_x) * (y - mean_y) for x, y in zip(summed_ms, measured_ms, strict=True))
            / spread
        )
        if slope > 0:
            scale = slope
    offset = mean_y - scale * mean_x
    return LayerSumLine(round(scale, 12), round(offset, 12), n)
