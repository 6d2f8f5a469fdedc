"""Joint sparsity + quantization under one model-size budget (Yang et al., CVPR 2020).

One constraint, ``Σ_layers bits × nonzeros ≤ budget``, and no per-layer hyper-parameters:
ADMM trains the weights towards their projection onto that constraint, where the projection
solves a sparsity knapsack (greedy by ``w² / bits``) and a multiple-choice knapsack over
bit-widths 1..8 (greedy by distortion drop per extra bit).

Example:
    >>> import torch
    >>> project_bits({"fc": torch.arange(8.0)}, budget_bits=16)
    {'fc': 2}
"""

from __future__ import annotations

from autoprune.admm._admm import admm_compress
from autoprune.admm._config import AdmmConfig, AdmmEpoch, AdmmResult, check_budget, coded_cost
from autoprune.admm._joint import Overhead, Projection, project_joint
from autoprune.admm._projection import (
    DEFAULT_BIT_OPTIONS,
    BitOption,
    bit_options,
    choose_bits,
    kmeans_distortion,
    project_bits,
    project_sparsity,
    yang_bits,
)

__all__ = [
    "DEFAULT_BIT_OPTIONS",
    "AdmmConfig",
    "AdmmEpoch",
    "AdmmResult",
    "BitOption",
    "Overhead",
    "Projection",
    "admm_compress",
    "bit_options",
    "check_budget",
    "coded_cost",
    "choose_bits",
    "kmeans_distortion",
    "project_bits",
    "project_joint",
    "project_sparsity",
    "yang_bits",
]
