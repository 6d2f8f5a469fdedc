"""Training, evaluation and fine-tuning loops (SGD + cosine schedule).

One loop serves baseline training and the fine-tuning of compressed models: masks and
fake-quant are parametrizations on the modules, so an ordinary optimizer step honours them.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from autoprune.core.errors import AutopruneError
from autoprune.core.modes import eval_mode
from autoprune.core.splits import DataSplits


@dataclass(frozen=True)
class TrainConfig:
    """How to train (or fine-tune) a model.

    Example:
        >>> TrainConfig(epochs=2, lr=0.05).batch_size
        128
    """

    epochs: int = 8
    """Passes over the training split."""
    lr: float = 0.05
    """Peak learning rate of SGD; decays to 0 on a cosine schedule."""
    momentum: float = 0.9
    """SGD (Nesterov) momentum."""
    weight_decay: float = 5e-4
    """L2 penalty."""
    batch_size: int = 128
    """Mini-batch size."""
    seed: int = 0
    """Seed of the weight initialisation and the data order."""
    label_smoothing: float = 0.0
    """Cross-entropy label smoothing."""

    def check(self) -> None:
        """Raise :class:`AutopruneError` on a value that cannot train."""
        if self.epochs < 0:
            raise AutopruneError(f"epochs {self.epochs} is negative; pass --epochs 1 or more")
        if self.lr <= 0:
            raise AutopruneError(f"learning rate {self.lr} must be positive; pass e.g. --lr 0.05")
        if self.batch_size < 1:
            raise AutopruneError(f"batch size {self.batch_size} must be at least 1")


DEFAULT_TRAIN: dict[str, TrainConfig] = {
    "demo": TrainConfig(epochs=15, lr=0.05, batch_size=64),
    "lenet300": TrainConfig(epochs=10, lr=0.05),
    "lenet5": TrainConfig(epochs=8, lr=0.05),
    "vgg_small": TrainConfig(epochs=8, lr=0.05),
    "resnet20": TrainConfig(epochs=10, lr=0.1),
    "mobilenetv2_small": TrainConfig(epochs=10, lr=0.1, weight_decay=4e-5),
}
"""Defaults per zoo model; other models use :class:`TrainConfig`'s defaults."""
FINETUNE_LR = 0.01
"""Learning rate of fine-tuning a compressed model (``apply``, the evaluator's fine-tune)."""
CHANCE_MARGIN = 0.05
"""Points a model must beat the most frequent class by (at most; ``0.5 / K`` when smaller)."""


def majority_accuracy(data: DataSplits) -> float:
    """What always answering the most frequent validation class scores (1 / K if balanced)."""
    counts = torch.bincount(data.y_val, minlength=data.num_classes)
    return max(float(counts.max()) / max(1, len(data.y_val)), 1.0 / max(1, data.num_classes))


def chance_accuracy(data: DataSplits) -> float:
    """The highest validation accuracy still counted as chance level: the most frequent
    class's share plus ``min(0.5 / K, 0.05)``; ``1.5 / K`` for up to ten balanced classes.

    A model at or below it learnt nothing (training collapsed to one class, or diverged),
    and is never cached as a baseline nor searched on.

    Example:
        >>> x, y = torch.zeros(20, 1, 2, 2), torch.arange(20) % 10
        >>> round(chance_accuracy(DataSplits("toy", x, y, x, y, x, y, num_classes=10)), 3)
        0.15
    """
    return majority_accuracy(data) + min(0.5 / max(1, data.num_classes), CHANCE_MARGIN)


class NonFiniteLoss(AutopruneError):
    """Training stopped because the loss became NaN or infinite (the weights diverged)."""


@dataclass
class EpochStats:
    """What one epoch measured (reported to progress callbacks)."""

    epoch: int
    loss: float
    train_accuracy: float
    val_accuracy: float
    seconds: float


@dataclass
class TrainResult:
    """Outcome of :func:`train`."""

    history: list[EpochStats] = field(default_factory=list)
    val_accuracy: float = 0.0
    seconds: float = 0.0


ProgressFn = Callable[[int, int, float], None]
"""Called after every batch as ``(step, total_steps, loss)``."""


@torch.no_grad()
def top1_accuracy(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, batch_size: int = 512
) -> float:
    """Top-1 accuracy of ``model`` (in eval mode) on the tensors ``x``, ``y``."""
    if len(x) == 0:
        raise AutopruneError("cannot evaluate on an empty split; use a larger dataset or split")
    correct = 0
    with eval_mode(model):
        for start in range(0, len(x), batch_size):
            logits = model(x[start : start + batch_size])
            correct += int((logits.argmax(dim=1) == y[start : start + batch_size]).sum())
    return correct / len(x)


def _distillation_loss(
    logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float
) -> torch.Tensor:
    soft_teacher = F.softmax(teacher_logits / temperature, dim=1)
    log_student = F.log_softmax(logits / temperature, dim=1)
    return F.kl_div(log_student, soft_teacher, reduction="batchmean") * temperature**2


def train(
    model: nn.Module,
    data: DataSplits,
    config: TrainConfig,
    *,
    teacher: nn.Module | None = None,
    kd_alpha: float = 0.5,
    kd_temperature: float = 4.0,
    on_batch: ProgressFn | None = None,
    on_epoch: Callable[[EpochStats], None] | None = None,
    stop_on_nonfinite: bool = False,
) -> TrainResult:
    """Train ``model`` in place with SGD and a cosine learning-rate schedule.

    Args:
        model: Network to train (may carry masks / fake-quant parametrizations).
        data: Dataset splits; accuracy is measured on the validation split.
        config: Optimisation settings.
        teacher: Optional uncompressed model for knowledge distillation.
        kd_alpha: Weight of the distillation term (the rest is cross-entropy).
        kd_temperature: Softmax temperature of the distillation term.
        on_batch: Progress callback after each batch.
        on_epoch: Callback after each epoch.
        stop_on_nonfinite: Raise :class:`NonFiniteLoss` as soon as a batch's loss is NaN or
            infinite, instead of training on (every later step would be NaN too).
    """
    config.check()
    torch.manual_seed(config.seed)
    loader = data.loader("train", config.batch_size, shuffle=True, seed=config.seed)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.SGD(
        params,
        lr=config.lr,
        momentum=config.momentum,
        nesterov=config.momentum > 0,
        weight_decay=config.weight_decay,
    )
    total = max(1, config.epochs * len(loader))
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total)
    if teacher is not None:
        teacher.eval()
    result = TrainResult()
    started = time.perf_counter()
    step = 0
    for epoch in range(config.epochs):
        epoch_start = time.perf_counter()
        model.train()
        loss_sum, correct, seen = 0.0, 0, 0
        for xb, yb in loader:
            logits = model(xb)
            loss = F.cross_entropy(logits, yb, label_smoothing=config.label_smoothing)
            if teacher is not None:
                with torch.no_grad():
                    teacher_logits = teacher(xb)
                kd = _distillation_loss(logits, teacher_logits, kd_temperature)
                loss = (1 - kd_alpha) * loss + kd_alpha * kd
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            step += 1
            batch_loss = float(loss.detach())
            if stop_on_nonfinite and not math.isfinite(batch_loss):
                raise NonFiniteLoss(
                    f"the loss became {batch_loss} at epoch {epoch + 1}, step {step} "
                    f"(lr {config.lr:g})"
                )
            loss_sum += batch_loss * len(xb)
            correct += int((logits.detach().argmax(1) == yb).sum())
            seen += len(xb)
            if on_batch is not None:
                on_batch(step, total, batch_loss)
        stats = EpochStats(
            epoch=epoch + 1,
            loss=loss_sum / max(seen, 1),
            train_accuracy=correct / max(seen, 1),
            val_accuracy=top1_accuracy(model, data.x_val, data.y_val),
            seconds=time.perf_counter() - epoch_start,
        )
        result.history.append(stats)
        if on_epoch is not None:
            on_epoch(stats)
    model.eval()
    result.val_accuracy = top1_accuracy(model, data.x_val, data.y_val)
    result.seconds = time.perf_counter() - started
    return result


def finetune(
    model: nn.Module,
    data: DataSplits,
    epochs: int,
    lr: float = FINETUNE_LR,
    teacher: nn.Module | None = None,
    *,
    seed: int = 0,
    on_batch: ProgressFn | None = None,
) -> TrainResult:
    """Fine-tune a compressed model; masks and fake-quant parametrizations stay in force.

    Example:
        >>> # finetune(pruned, data, epochs=2, lr=0.01, teacher=original)
    """
    config = TrainConfig(epochs=epochs, lr=lr, seed=seed, weight_decay=1e-4)
    return train(model, data, config, teacher=teacher, on_batch=on_batch)
