"""Training, evaluation and fine-tuning loops (SGD + cosine schedule).

One loop serves baseline training and the fine-tuning of compressed models: masks and
fake-quant are parametrizations on the modules, so an ordinary optimizer step honours them.
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from autoprune.core.defaults import DEFAULT_TRAIN as DEFAULT_TRAIN  # re-exported
from autoprune.core.defaults import FINETUNE_LR, TrainConfig
from autoprune.core.errors import AutopruneError
from autoprune.core.modes import eval_mode
from autoprune.core.splits import Batch, DataSplits, Split

CHANCE_MARGIN = 0.05
"""Points a model must beat the most frequent class by (at most; ``0.5 / K`` when smaller)."""


def class_counts(data: DataSplits, split: Split = "val") -> torch.Tensor:
    """Samples per class in ``split`` (read batch by batch; labels only are kept)."""
    classes = _classes(data)
    counts = torch.zeros(classes, dtype=torch.int64)
    for _, yb in data.loader(split, 1024):
        counts += torch.bincount(torch.as_tensor(yb).reshape(-1).cpu(), minlength=classes)
    return counts


def majority_accuracy(data: DataSplits) -> float:
    """What always answering the most frequent validation class scores (1 / K if balanced)."""
    counts = class_counts(data)
    classes = _classes(data)
    return max(float(counts.max()) / max(1, int(counts.sum())), 1.0 / max(1, classes))


def chance_accuracy(data: DataSplits) -> float:
    """The highest validation accuracy still counted as chance level: the most frequent
    class's share plus ``min(0.5 / K, 0.05)``; ``1.5 / K`` for up to ten balanced classes.

    A model at or below it learnt nothing (training collapsed to one class, or diverged),
    and is never cached as a baseline nor searched on.

    Example:
        >>> x, y = torch.zeros(20, 1, 2, 2), torch.arange(20) % 10
        >>> data = DataSplits.from_tensors("toy", x, y, x, y, x, y, num_classes=10)
        >>> round(chance_accuracy(data), 3)
        0.15
    """
    return majority_accuracy(data) + min(0.5 / max(1, _classes(data)), CHANCE_MARGIN)


def _classes(data: DataSplits) -> int:
    """The class count of a classification dataset."""
    if data.num_classes is None:
        raise AutopruneError(
            f"dataset '{data.name}' has no classes (num_classes=None): top-1 accuracy and "
            "cross-entropy training need class labels; pass evaluate= and finetune= for "
            "another task"
        )
    return data.num_classes


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


@torch.inference_mode()
def batches_accuracy(model: nn.Module, batches: Iterable[Batch]) -> float:
    """Top-1 accuracy of ``model`` (in eval mode) over ``(inputs, labels)`` batches, each
    moved to the model's device."""
    device = model_device(model)
    correct = seen = 0
    with eval_mode(model):
        for xb, yb in batches:
            logits = model(xb.to(device, non_blocking=True))
            labels = torch.as_tensor(yb).to(logits.device)
            correct += int((logits.argmax(dim=1) == labels).sum())
            seen += len(labels)
    if seen == 0:
        raise AutopruneError("cannot evaluate on an empty split; use a larger dataset or split")
    return correct / seen


def top1_accuracy(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, batch_size: int = 512
) -> float:
    """Top-1 accuracy of ``model`` (in eval mode) on the tensors ``x``, ``y``."""
    batches = ((x[i : i + batch_size], y[i : i + batch_size]) for i in range(0, len(x), batch_size))
    return batches_accuracy(model, batches)


def split_accuracy(
    model: nn.Module,
    data: DataSplits,
    split: Split = "val",
    *,
    limit: int | None = None,
    batch_size: int = 512,
) -> float:
    """Top-1 accuracy on one split of ``data`` (its first ``limit`` samples), streamed."""
    _classes(data)
    return batches_accuracy(model, data.loader(split, batch_size, limit=limit))


def model_device(model: nn.Module) -> torch.device:
    """The device of a model's first parameter or buffer (CPU for a model without any)."""
    for tensor in itertools.chain(model.parameters(), model.buffers()):
        return tensor.device
    return torch.device("cpu")


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
    _classes(data)
    torch.manual_seed(config.seed)
    device = model_device(model)
    loader = data.loader("train", config.batch_size, shuffle=True, seed=config.seed)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.SGD(
        params,
        lr=config.lr,
        momentum=config.momentum,
        nesterov=config.momentum > 0,
        weight_decay=config.weight_decay,
    )
    total = max(1, config.epochs * _batches_per_epoch(data, config.batch_size))
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
        for x_cpu, y_cpu in loader:
            xb = x_cpu.to(device, non_blocking=True)
            yb = torch.as_tensor(y_cpu).to(device, non_blocking=True)
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
            val_accuracy=split_accuracy(model, data),
            seconds=time.perf_counter() - epoch_start,
        )
        result.history.append(stats)
        if on_epoch is not None:
            on_epoch(stats)
    model.eval()
    result.val_accuracy = split_accuracy(model, data)
    result.seconds = time.perf_counter() - started
    return result


def _batches_per_epoch(data: DataSplits, batch_size: int) -> int:
    """Batches in one pass over the training split (1 for a stream of unknown length)."""
    size = data.size("train")
    return 1 if size is None else math.ceil(size / batch_size)


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
