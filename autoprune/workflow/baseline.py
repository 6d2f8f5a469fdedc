"""Baseline checkpoints: train a zoo model once per request and reuse it afterwards.

A checkpoint is a state dict (``.pt``) with a JSON side-car holding the request and the
measured accuracies. The file name is a hash of the request, so asking again with the
same model, dataset, epochs, seed and optimiser settings loads instead of training.

Training watches itself: a loss that turns NaN or infinite, or a model that ends no better
than chance (:func:`~autoprune.core.training.chance_accuracy`: 15% for ten balanced classes),
is trained once more from the same initial weights at a fifth of the learning rate; if
that fails too the request is refused with an :class:`~autoprune.core.errors.AutopruneError`
and nothing is cached. A cached checkpoint at chance level (written before this check
existed) is trained again.
"""

from __future__ import annotations

import copy
import hashlib
import json
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from autoprune.core.errors import AutopruneError
from autoprune.core.training import (
    EpochStats,
    NonFiniteLoss,
    ProgressFn,
    TrainConfig,
    TrainResult,
    chance_accuracy,
    majority_accuracy,
    split_accuracy,
    train,
)
from autoprune.core.user_code import user_errors
from autoprune.data import DataSplits
from autoprune.models import build_model, load_weights
from autoprune.system.atomic_dir import atomic_file, write_atomic
from autoprune.system.verified import DIGEST_KEY, CacheWarning, set_aside, sha256_of, verify

RETRY_LR_FACTOR = 0.2
"""A failed training is tried once more at this fraction of its learning rate."""


@dataclass(frozen=True)
class BaselineRequest:
    """Which baseline to train: the cache key.

    Example:
        >>> BaselineRequest("demo", "digits", TrainConfig(epochs=2)).stem()[:14]
        'demo__digits__'
    """

    model: str
    dataset: str
    config: TrainConfig

    def stem(self) -> str:
        """File name stem: readable prefix plus a hash of every setting."""
        blob = json.dumps({"model": self.model, "dataset": self.dataset, **asdict(self.config)})
        digest = hashlib.sha256(blob.encode()).hexdigest()[:10]
        safe = "".join(c if c.isalnum() or c in "-_" else "-" for c in self.model)
        safe_data = "".join(c if c.isalnum() or c in "-_" else "-" for c in self.dataset)
        return f"{safe}__{safe_data}__e{self.config.epochs}_s{self.config.seed}_{digest}"


@dataclass
class Baseline:
    """A trained model with its metadata."""

    model: nn.Module
    meta: dict[str, Any]
    weights_path: Path
    cached: bool


def build_for(name: str, data: DataSplits) -> nn.Module:
    """Build a model sized for ``data`` (channels, classes, input size)."""
    if data.num_classes is None or len(data.input_shape) != 3:
        raise AutopruneError(
            f"model '{name}' is built for image classification, but dataset '{data.name}' "
            f"has inputs {data.input_shape} and num_classes={data.num_classes}; pass your "
            "own nn.Module (model=) for another task"
        )
    channels, height, width = data.input_shape
    return build_model(
        name, in_channels=channels, num_classes=data.num_classes, input_size=(height, width)
    )


def load_baseline(request: BaselineRequest, data: DataSplits, root: Path) -> Baseline | None:
    """The cached checkpoint for ``request``, or None when it must be trained (again).

    The checkpoint is used only when its bytes hash to the digest its side-car recorded at
    save. A damaged checkpoint or side-car is a cache miss with a one-line
    :class:`CacheWarning`: both files are kept aside (``NAME.damaged-<time>``) and the
    baseline is trained again. A side-car from before hashes were recorded is checked by
    scoring the weights on the validation split once, then given its hash.
    """
    weights = root / f"{request.stem()}.pt"
    meta_path = weights.with_suffix(".json")
    if not (weights.is_file() and meta_path.is_file()):
        return None
    try:
        meta = json.loads(meta_path.read_text())
    except (OSError, ValueError, UnicodeDecodeError):
        meta = None
    accuracy = meta.get("val_accuracy") if isinstance(meta, dict) else None
    if not isinstance(meta, dict) or not isinstance(accuracy, (int, float)):
        _damaged(weights, "its side-car JSON is unreadable")
        return None
    if accuracy <= chance_accuracy(data):
        return None  # a chance-level checkpoint is never reused
    problem = verify(weights, meta[DIGEST_KEY]) if DIGEST_KEY in meta else None
    if problem is not None:
        _damaged(weights, problem)
        return None
    try:
        model = load_weights(build_for(request.model, data), weights)
    except AutopruneError:
        _damaged(weights, "it is not a readable state dict")
        return None
    if DIGEST_KEY not in meta and not _still_scores(model, data, accuracy):
        _damaged(weights, f"it no longer scores its recorded {accuracy:.1%}")
        return None
    if DIGEST_KEY not in meta:
        meta[DIGEST_KEY] = sha256_of(weights)
        write_atomic(meta_path, json.dumps(meta, indent=2))
    return Baseline(model, meta, weights, cached=True)


def _still_scores(model: nn.Module, data: DataSplits, recorded: float) -> bool:
    """Whether ``model`` scores its recorded validation accuracy (within a point)."""
    return abs(split_accuracy(model, data, "val") - recorded) <= LEGACY_TOLERANCE


LEGACY_TOLERANCE = 0.01
"""How far a checkpoint without a hash may score from its recorded validation accuracy."""


def _damaged(weights: Path, problem: str) -> None:
    """Keep a damaged checkpoint and its side-car aside and say so; a cache miss."""
    kept = set_aside(weights)
    set_aside(weights.with_suffix(".json"))
    warnings.warn(
        f"cached baseline {weights.name} is damaged ({problem}); training it again (the "
        f"damaged file is kept as {kept.name if kept else weights.name})",
        CacheWarning,
        stacklevel=3,
    )


def train_watched(
    model: nn.Module,
    data: DataSplits,
    config: TrainConfig,
    *,
    on_batch: ProgressFn | None = None,
    on_epoch: Callable[[EpochStats], None] | None = None,
    what: str = "the model",
) -> tuple[TrainResult, TrainConfig]:
    """Train ``model`` in place; retry once at ``lr * RETRY_LR_FACTOR`` from the same initial
    weights when the loss turns non-finite or the model ends at chance level.

    Returns:
        The training result and the settings that produced it.

    Raises:
        AutopruneError: When both attempts fail, naming what happened at each learning rate.
    """
    initial = copy.deepcopy(model.state_dict())
    chance = chance_accuracy(data)
    problems = []
    for attempt in (config, replace(config, lr=config.lr * RETRY_LR_FACTOR)):
        model.load_state_dict(initial)
        try:
            with user_errors(f"training {what}"):
                result = train(
                    model,
                    data,
                    attempt,
                    on_batch=on_batch,
                    on_epoch=on_epoch,
                    stop_on_nonfinite=True,
                )
        except NonFiniteLoss as exc:
            problems.append(str(exc))
            continue
        if result.val_accuracy > chance:
            return result, attempt
        problems.append(
            f"at lr {attempt.lr:g} it ended at chance level ({result.val_accuracy:.1%} "
            f"validation accuracy; always answering the most frequent class scores "
            f"{majority_accuracy(data):.1%})"
        )
    raise AutopruneError(
        f"training {what} on {data.name} did not learn: {'; '.join(problems)}; nothing was "
        "cached. Check the data (labels that match the images, pixel values), or train it "
        "with other settings (autoprune train --lr 0.01 --epochs 20) and pass those weights "
        "with --weights"
    )


def train_baseline(
    request: BaselineRequest,
    data: DataSplits,
    root: Path,
    *,
    force: bool = False,
    on_batch: ProgressFn | None = None,
    on_epoch: Callable[[EpochStats], None] | None = None,
    device: torch.device | None = None,
) -> Baseline:
    """Load the cached baseline for ``request`` or train and cache it (on ``device``; the
    checkpoint is saved from CPU copies, so it loads anywhere).

    Args:
        request: Model, dataset and training settings.
        data: The dataset splits (the test split is only used for the reported accuracy).
        root: Checkpoint directory (created if missing).
        force: Retrain even when a checkpoint exists.
        on_batch: Progress callback per batch.
        on_epoch: Callback per epoch.
        device: Where to train (default: CPU).
    """
    if request.dataset != data.name:
        raise AutopruneError(
            f"request is for dataset '{request.dataset}' but '{data.name}' was loaded"
        )
    root.mkdir(parents=True, exist_ok=True)
    if not force:
        cached = load_baseline(request, data, root)
        if cached is not None:
            return cached
    torch.manual_seed(request.config.seed)  # the seed also fixes the initial weights
    model = build_for(request.model, data).to(device or torch.device("cpu"))
    result, used = train_watched(
        model, data, request.config, on_batch=on_batch, on_epoch=on_epoch, what=request.model
    )
    meta = {
        "model": request.model,
        "dataset": request.dataset,
        "input_shape": list(data.input_shape),
        "num_classes": data.num_classes,
        "val_accuracy": result.val_accuracy,
        "test_accuracy": split_accuracy(model, data, "test"),
        "train_seconds": round(result.seconds, 2),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "torch": torch.__version__,
        **asdict(request.config),
    }
    if used.lr != request.config.lr:
        meta["trained_lr"] = used.lr  # the request's lr failed (see train_watched)
    weights = root / f"{request.stem()}.pt"
    with atomic_file(weights) as tmp:
        torch.save({k: v.detach().cpu() for k, v in model.state_dict().items()}, tmp)
    meta[DIGEST_KEY] = sha256_of(weights)
    write_atomic(weights.with_suffix(".json"), json.dumps(meta, indent=2))
    return Baseline(model, meta, weights, cached=False)
