"""Settings and results of :func:`autoprune.admm.admm_compress`, and its budget check."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from torch import nn

from autoprune.admm._joint import Overhead
from autoprune.admm._projection import DEFAULT_BIT_OPTIONS, DISTORTION_ITERS, check_bit_options
from autoprune.coding import ApzReport
from autoprune.core.errors import AutopruneError
from autoprune.core.policy import Policy
from autoprune.deep_compression import CodedModel


@dataclass(frozen=True)
class AdmmConfig:
    """Settings of :func:`admm_compress`.

    Example:
        >>> AdmmConfig(epochs=2, rho=0.05).rho_growth
        1.5
    """

    epochs: int = 6
    """ADMM epochs (W-step epoch, then V-step and dual step)."""
    finetune_epochs: int = 3
    """Fine-tuning epochs after the hard projection (masks and assignments frozen)."""
    rho: float = 0.02
    """Initial ADMM penalty ρ."""
    rho_growth: float = 1.5
    """Factor applied to ρ after every epoch (1: constant)."""
    lr: float = 0.01
    """Learning rate of the W-steps (SGD, Nesterov momentum, constant)."""
    finetune_lr: float = 0.005
    """Peak learning rate of the fine-tune (cosine schedule)."""
    momentum: float = 0.9
    """SGD momentum of the W-steps."""
    weight_decay: float = 0.0
    """L2 penalty of the W-steps (the ADMM penalty already pulls weights towards V)."""
    batch_size: int = 128
    """Mini-batch size of the W-steps."""
    bit_options: tuple[int, ...] = DEFAULT_BIT_OPTIONS
    """Widths the bit-width knapsack chooses from, in 1..8."""
    rounds: int = 1
    """Alternations of the sparsity and bit-width knapsacks per projection start."""
    kmeans_iters: int = DISTORTION_ITERS
    """Lloyd iterations of the k-means inside the projections."""
    layers: tuple[str, ...] | None = None
    """Layers under the budget (None: every Conv2d/Linear layer); the others stay float."""
    index_bits: dict[str, int] | None = None
    """Bits per kept weight the budget also counts, by layer (None: Yang et al.'s count)."""
    codebook_bits: int = 0
    """Bits per codebook entry the budget also counts (0: Yang et al.'s count; 32: float32)."""
    seed: int = 0
    """Seed of the data order."""

    def check(self) -> None:
        """Raise :class:`AutopruneError` on a setting that cannot run."""
        if self.epochs < 0 or self.finetune_epochs < 0:
            raise AutopruneError("ADMM epochs and finetune_epochs must be >= 0; pass e.g. 6 and 3")
        if self.rho <= 0 or self.rho_growth < 1:
            raise AutopruneError(
                f"rho {self.rho} must be > 0 and rho_growth {self.rho_growth} >= 1; "
                "use e.g. rho=0.02, rho_growth=1.5"
            )
        if self.lr <= 0 or self.finetune_lr <= 0 or self.batch_size < 1:
            raise AutopruneError("ADMM lr, finetune_lr and batch_size must be positive")
        if self.rounds < 1 or self.kmeans_iters < 1:
            raise AutopruneError("ADMM rounds and kmeans_iters must be at least 1")
        check_bit_options(self.bit_options)
        if self.codebook_bits < 0 or any(b < 0 for b in (self.index_bits or {}).values()):
            raise AutopruneError(
                "index_bits and codebook_bits must be >= 0; use 0 for Yang's count"
            )

    @property
    def overhead(self) -> Overhead:
        """The storage overhead the budget counts."""
        return Overhead(self.index_bits, self.codebook_bits)


@dataclass(frozen=True)
class AdmmEpoch:
    """What one ADMM epoch measured.

    Attributes:
        epoch: 1-based epoch.
        rho: ρ during the epoch.
        loss: Mean task loss (cross-entropy) of the epoch.
        penalty: Mean ``ρ/2 ‖W − V + Y‖²`` of the epoch.
        residual: ``‖W − V‖ / ‖W‖`` after the epoch's V-step (primal residual).
        val_accuracy: Validation accuracy of the dense W.
        projected_accuracy: Validation accuracy with V in place of W.
        yang_bits: Σ bits × nonzeros of V.
        cost_bits: V's budgeted size (Yang's count plus any overhead).
        bits: V's bit-width per layer.
        density: V's fraction of kept weights per layer.
    """

    epoch: int
    rho: float
    loss: float
    penalty: float
    residual: float
    val_accuracy: float
    projected_accuracy: float
    yang_bits: int
    cost_bits: int
    bits: dict[str, int]
    density: dict[str, float]


@dataclass
class AdmmResult:
    """Outcome of :func:`admm_compress`.

    Attributes:
        policy: Per-layer sparsity and k-means bit-width (``quantizer="kmeans"``).
        coded: The compressed model (plain weights) and its coded weights.
        history: One entry per ADMM epoch.
        budget_bits: The budget: ``cost_bits <= budget_bits``.
        cost_bits: Σ bits × nonzeros plus the configured overhead (equals :attr:`yang_bits`
            without overhead).
        val_accuracy: Validation accuracy of the final (fine-tuned) compressed model.
    """

    policy: Policy
    coded: CodedModel
    history: list[AdmmEpoch] = field(default_factory=list)
    budget_bits: float = 0.0
    cost_bits: int = 0
    val_accuracy: float = 0.0

    @property
    def model(self) -> nn.Module:
        """The compressed model."""
        return self.coded.model

    @property
    def yang_bits(self) -> int:
        """Σ bits × nonzeros of the result (never above :attr:`budget_bits`)."""
        return self.coded.yang_bits

    def write_apz(self, path: str | Path, *, huffman: bool = True) -> ApzReport:
        """Write the compressed model to an ``.apz`` file (the policy in its metadata)."""
        return self.coded.write_apz(
            path, huffman=huffman, metadata={"policy": self.policy.to_dict()}
        )


def check_budget(size_budget_bytes: float, weight_count: int) -> float:
    """The budget in bits; an error unless it lies in (0, 32 bits × weights].

    Example:
        >>> check_budget(100, 1000)
        800.0
    """
    dense = 4 * weight_count
    if not 0 < size_budget_bytes <= dense or math.isnan(size_budget_bytes):
        raise AutopruneError(
            f"size budget {size_budget_bytes} bytes is outside (0, {dense}] (the {weight_count} "
            f"weights at 32 bits); pass e.g. {dense / 40:.0f} bytes for 40x compression"
        )
    return 8.0 * float(size_budget_bytes)


def coded_cost(coded: CodedModel, overhead: Overhead) -> int:
    """The budgeted size of coded weights: Σ (bits + index) × nonzeros + codebook entries."""
    total = 0
    for name, q in coded.weights.items():
        total += (q.bits + overhead.index(name)) * q.nonzeros
        total += overhead.codebook_bits * q.codebook.size
    return total
