"""Retraining a compressed model as the papers do, and never shipping a worse one.

The model arrives prepared by the compression pipeline: a
:class:`~autoprune.compress.sparsity.SparsityMask` on every sparse weight (the effective
weight is exactly zero where pruned and the mask blocks the gradient, so no optimizer step,
momentum and weight decay included, can revive it) and a weight quantizer on top:

* k-means layers (:class:`~autoprune.compress.quantize.KMeansWeightQuant`, Deep Compression
  and Yang et al.): the centroids are the parameters, the assignments stay fixed, so every
  layer keeps at most ``2**bits`` distinct values. Autograd gives a centroid the *sum* of
  its members' gradients (Deep Compression's update); :func:`normalise_centroid_steps`
  divides each centroid's step by its member count. At 1-5 bits a centroid stands for
  hundreds to tens of thousands of weights, and one learning rate for the float weights
  multiplied by that count is what made ``apply --finetune-epochs`` diverge. Deep
  Compression's summed gradient with a per-centroid learning rate of ``lr / members`` is
  the same step as moving each centroid by its members' mean gradient.
* linear layers (:class:`~autoprune.compress.quantize.LinearWeightQuant`): the latent float
  weight learns through a straight-through estimator and the per-channel range is re-fitted
  from it in every forward pass (at 1 bit: the sign and the mean kept magnitude).

:func:`retrain` then trains with :func:`autoprune.core.training.train` (optionally distilled
from the original model) and guards the result: the loss is watched batch by batch and an
attempt that diverges (a non-finite loss, or a loss window :data:`DIVERGENCE_FACTOR` times
its first one) is stopped early and retried from the start at :data:`LR_DROP` times the
rate; every epoch is scored and the best state seen, the starting one included, is kept.
So retraining never returns a model that scores below the one it was given.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.utils.hooks import RemovableHandle

from autoprune.compress.quantize import KMeansWeightQuant
from autoprune.core.errors import AutopruneError
from autoprune.core.splits import DataSplits
from autoprune.core.training import (
    FINETUNE_LR,
    EpochStats,
    ProgressFn,
    TrainConfig,
    chance_accuracy,
    split_accuracy,
    train,
)

DIVERGENCE_WINDOW = 25
"""Batches averaged when comparing the loss with its start."""
DIVERGENCE_FACTOR = 3.0
"""A loss window this many times the first window (plus :data:`DIVERGENCE_MARGIN`) diverged."""
DIVERGENCE_MARGIN = 0.5
"""Added to the first window's loss, so that a nearly zero starting loss may still rise."""
LR_DROP = 0.2
"""The learning rate of the next attempt after a divergence, relative to the last one."""
RETRIES = 2
"""Attempts after the first one when retraining diverges."""
RETRAIN_WEIGHT_DECAY = 1e-4
"""L2 penalty while retraining (the masks keep pruned weights at zero regardless)."""

Scorer = Callable[[nn.Module], float]
"""Validation score of a model (higher is better); must not change the model."""


class Diverged(AutopruneError):
    """An attempt of :func:`retrain` stopped because its loss or accuracy blew up."""


@dataclass
class RetrainAttempt:
    """One training run at one learning rate."""

    lr: float
    scores: list[float] = field(default_factory=list)
    """The selection score after each epoch that finished."""
    diverged: str | None = None
    """Why the attempt was stopped early (None when it ran all its epochs)."""


@dataclass
class RetrainResult:
    """What :func:`retrain` did; the model holds the best state seen."""

    start_score: float
    score: float
    best_epoch: int
    """Epoch of the kept state in its attempt (0: the model as given)."""
    best_lr: float | None
    """Learning rate of the attempt that produced the kept state (None: the start)."""
    attempts: list[RetrainAttempt] = field(default_factory=list)

    @property
    def improved(self) -> bool:
        """Whether retraining changed the model (a better epoch than the start was found)."""
        return self.best_epoch > 0

    def to_dict(self) -> dict:
        """Plain form for reports."""
        return {
            "start_score": self.start_score,
            "score": self.score,
            "best_epoch": self.best_epoch,
            "best_lr": self.best_lr,
            "attempts": [vars(a) for a in self.attempts],
        }


def normalise_centroid_steps(model: nn.Module) -> list[RemovableHandle]:
    """Divide each k-means centroid's gradient by its member count (the members' mean).

    Returns the hook handles; the hooks also disappear when the model is squashed.
    """
    handles = []
    for module in model.modules():
        if not isinstance(module, KMeansWeightQuant):
            continue
        kept = module.assignments if module.mask is None else module.assignments[module.mask]
        counts = torch.bincount(kept.reshape(-1), minlength=module.centroids.numel())
        scale = 1.0 / counts.clamp(min=1).to(module.centroids.dtype)
        handles.append(module.centroids.register_hook(lambda grad, scale=scale: grad * scale))
    return handles


class _LossWatch:
    """``on_batch`` callback that raises :class:`Diverged` when the loss blows up."""

    def __init__(self, forward: ProgressFn | None) -> None:
        self.forward = forward
        self.window: list[float] = []
        self.reference: float | None = None

    def __call__(self, step: int, total: int, loss: float) -> None:
        if self.forward is not None:
            self.forward(step, total, loss)
        if not math.isfinite(loss):
            raise Diverged(f"the loss became {loss} at step {step}")
        self.window.append(loss)
        if len(self.window) < DIVERGENCE_WINDOW:
            return
        mean = sum(self.window) / len(self.window)
        self.window.clear()
        if self.reference is None:
            self.reference = mean
        elif mean > DIVERGENCE_FACTOR * self.reference + DIVERGENCE_MARGIN:
            raise Diverged(f"the loss rose from {self.reference:.3g} to {mean:.3g} by step {step}")


def _snapshot(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


@dataclass
class _Best:
    score: float
    state: dict[str, torch.Tensor]
    epoch: int = 0
    lr: float | None = None


def _attempt(
    model: nn.Module,
    data: DataSplits,
    config: TrainConfig,
    score: Scorer,
    best: _Best,
    floor: float,
    teacher: nn.Module | None,
    on_batch: ProgressFn | None,
) -> RetrainAttempt:
    """Train once from the current state, keeping the best epoch in ``best``."""
    attempt = RetrainAttempt(config.lr)

    def on_epoch(stats: EpochStats) -> None:
        value = score(model)
        attempt.scores.append(value)
        if value > best.score:
            best.score, best.state = value, _snapshot(model)
            best.epoch, best.lr = stats.epoch, config.lr
        if value < floor:
            raise Diverged(f"validation score fell to {value:.4f} after epoch {stats.epoch}")

    try:
        watch = _LossWatch(on_batch)
        train(model, data, config, teacher=teacher, on_batch=watch, on_epoch=on_epoch)
    except Diverged as exc:
        attempt.diverged = str(exc)
    return attempt


def retrain(
    model: nn.Module,
    data: DataSplits,
    epochs: int,
    *,
    lr: float = FINETUNE_LR,
    teacher: nn.Module | None = None,
    score: Scorer | None = None,
    seed: int = 0,
    retries: int = RETRIES,
    on_batch: ProgressFn | None = None,
    chance: float | None = None,
) -> RetrainResult:
    """Retrain a compressed model in place; it ends holding the best-scoring state seen.

    Args:
        model: The compressed model (masks and quantizers as parametrizations).
        data: Splits; trains on ``train``.
        epochs: Epochs of each attempt.
        lr: Peak learning rate of the first attempt (cosine decay); a diverged attempt is
            retried at ``LR_DROP`` times its rate, ``retries`` times at most.
        teacher: The original model, to distil from (None: plain cross-entropy).
        score: Selection score of a model (default: top-1 on the validation split).
        seed: Seed of the data order.
        on_batch: Progress callback ``(step, total, loss)`` (restarts with each attempt).
        chance: The score of a model that learnt nothing; an epoch scoring below halfway
            from the start to it has diverged (default: the chance accuracy of ``data`` with
            the default score, none with a given one).

    Example:
        >>> # result = retrain(compressed, data, 3, teacher=original)
        >>> # result.score >= result.start_score
    """
    if epochs < 1:
        raise AutopruneError(f"retraining epochs {epochs} must be at least 1")
    if not lr > 0:
        raise AutopruneError(f"learning rate {lr} must be positive; pass e.g. --lr 0.01")
    scorer = score or (lambda m: split_accuracy(m, data))
    handles = normalise_centroid_steps(model)
    start = scorer(model)
    initial = _snapshot(model)
    best = _Best(start, initial)
    if chance is None and score is None and data.num_classes:
        chance = chance_accuracy(data)
    floor = -math.inf if chance is None else (start + chance) / 2
    result = RetrainResult(start, start, 0, None)
    try:
        for attempt_index in range(retries + 1):
            model.load_state_dict(initial)
            config = TrainConfig(
                epochs=epochs, lr=lr * LR_DROP**attempt_index, seed=seed,
                weight_decay=RETRAIN_WEIGHT_DECAY,
            )  # fmt: skip
            attempt = _attempt(model, data, config, scorer, best, floor, teacher, on_batch)
            result.attempts.append(attempt)
            if attempt.diverged is None:
                break
    finally:
        for handle in handles:
            handle.remove()
    model.load_state_dict(best.state)
    model.eval()
    result.score, result.best_epoch, result.best_lr = best.score, best.epoch, best.lr
    return result
