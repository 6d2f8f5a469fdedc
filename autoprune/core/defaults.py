"""Training defaults as plain data, importable without torch (the CLI's ``--help`` reads
them): :class:`TrainConfig`, the zoo's :data:`DEFAULT_TRAIN`, :data:`FINETUNE_LR` (re-exported
by :mod:`autoprune.core.training`) and :data:`MEASURED_PROFILE` (by :mod:`autoprune.cost`)."""

from __future__ import annotations

from dataclasses import dataclass

from autoprune.core.errors import AutopruneError


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
MEASURED_PROFILE = "cpu"
"""The packaged hardware profile measured on this machine (ONNX Runtime), the one to
validate the latency model with (``autoprune cost validate``)."""
