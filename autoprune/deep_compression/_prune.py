"""Iterative magnitude pruning with retraining on the cubic schedule (Zhu & Gupta 2017).

Each pruned layer carries a :class:`~autoprune.compress.sparsity.SparsityMask`. Step 0 sets
the initial sparsity before training; steps ``1..n`` raise every layer to its scheduled
sparsity after a given number of training batches (spread over the first ``ramp`` of
retraining); pruned weights never come back. Training continues at the final sparsity.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn.utils import parametrize

from autoprune.compress import apply_sparsity, sparsity_of
from autoprune.compress.sparsity import SparsityMask, compressible_layer, sparsity_mask
from autoprune.core.training import finetune
from autoprune.data import DataSplits
from autoprune.deep_compression._schedule import cubic_sparsity, step_batches


@dataclass(frozen=True)
class PruneStep:
    """One pruning step.

    Attributes:
        step: Step number, 0..n.
        batch: Training batches done before the step took effect.
        target: Scheduled sparsity per layer.
        sparsity: Measured fraction of zero weights per layer right after the step.
    """

    step: int
    batch: int
    target: dict[str, float]
    sparsity: dict[str, float]


@dataclass(frozen=True)
class PruneSchedule:
    """How the sparsity rises during retraining.

    Example:
        >>> round(PruneSchedule(steps=4).targets({"fc": 0.9}, 2)["fc"], 6)
        0.7875
    """

    steps: int = 8
    """Pruning steps after step 0 (``n`` of the cubic schedule)."""
    ramp: float = 0.7
    """Fraction of the retraining batches over which the steps are spread."""
    initial: float = 0.0
    """Sparsity of step 0 (``s_i``), applied before training."""

    def targets(self, finals: Mapping[str, float], step: int) -> dict[str, float]:
        """Scheduled sparsity of every layer at ``step`` (never above its final value)."""
        return {
            name: cubic_sparsity(step, self.steps, final, min(self.initial, final))
            for name, final in finals.items()
        }


class _Pruner:
    """Applies the schedule's steps to a model as training progresses."""

    def __init__(self, model: nn.Module, finals: Mapping[str, float], schedule: PruneSchedule):
        self.model = model
        self.finals = {name: s for name, s in finals.items() if s > 0}
        self.schedule = schedule
        self.history: list[PruneStep] = []
        self.when: list[int] | None = None
        self.next_step = 0
        self.batches = 0

    def apply(self, step: int, batch: int) -> None:
        targets = self.schedule.targets(self.finals, step)
        apply_sparsity(self.model, {n: s for n, s in targets.items() if s > 0})
        measured = {name: sparsity_of(self.model, name) for name in self.finals}
        self.history.append(PruneStep(step, batch, targets, measured))
        self.next_step = step + 1

    def on_batch(self, batch: int, total: int, loss: float) -> None:
        del loss
        self.batches = batch
        if self.when is None:
            self.when = step_batches(self.schedule.steps, total, self.schedule.ramp)
        while self.next_step <= self.schedule.steps and batch >= self.when[self.next_step - 1]:
            self.apply(self.next_step, batch)

    def finish(self) -> None:
        """Apply the steps still due (all of them when nothing was trained)."""
        while self.next_step <= self.schedule.steps:
            self.apply(self.next_step, self.batches)


def gradual_prune(
    model: nn.Module,
    data: DataSplits,
    finals: Mapping[str, float],
    schedule: PruneSchedule,
    *,
    epochs: int,
    lr: float,
    seed: int = 0,
) -> list[PruneStep]:
    """Prune ``model`` in place to ``finals`` while retraining it for ``epochs``.

    Every layer of ``finals`` with a positive sparsity gets a mask; with ``epochs == 0`` all
    steps are applied at once (one-shot pruning on the same schedule).

    Returns:
        Every step with its scheduled and measured sparsity.
    """
    pruner = _Pruner(model, finals, schedule)
    for name in pruner.finals:
        module = compressible_layer(model, name)
        if sparsity_mask(module) is None:
            ones = torch.ones_like(module.weight, dtype=torch.bool)
            parametrize.register_parametrization(module, "weight", SparsityMask(ones))
    pruner.apply(0, 0)
    if epochs:
        finetune(model, data, epochs, lr, seed=seed, on_batch=pruner.on_batch)
    pruner.finish()
    model.eval()
    return pruner.history
