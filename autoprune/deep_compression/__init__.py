"""Deep Compression (Han, Mao, Dally 2016): prune, share weights by k-means, Huffman-code.

Example:
    >>> round(cubic_sparsity(2, 4, final=0.8), 6)
    0.7
"""

from __future__ import annotations

from autoprune.deep_compression._budget import targets_for_budget
from autoprune.deep_compression._coded import CodedModel, effective_state_dict
from autoprune.deep_compression._pipeline import (
    STAGES,
    DeepCompressionConfig,
    DeepCompressionResult,
    StageReport,
    deep_compress,
)
from autoprune.deep_compression._prune import PruneSchedule, PruneStep, gradual_prune
from autoprune.deep_compression._schedule import cubic_sparsity, step_batches
from autoprune.deep_compression._sensitivity import (
    DEFAULT_GRID,
    SensitivityScan,
    sensitivity_scan,
)

__all__ = [
    "DEFAULT_GRID",
    "STAGES",
    "CodedModel",
    "DeepCompressionConfig",
    "DeepCompressionResult",
    "PruneSchedule",
    "PruneStep",
    "SensitivityScan",
    "StageReport",
    "cubic_sparsity",
    "deep_compress",
    "effective_state_dict",
    "gradual_prune",
    "sensitivity_scan",
    "step_batches",
    "targets_for_budget",
]
