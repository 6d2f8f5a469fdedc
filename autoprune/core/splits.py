"""The :class:`DataSplits` container: normalised train / validation / test tensors."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch.utils.data import (
    BatchSampler,
    DataLoader,
    RandomSampler,
    SequentialSampler,
    TensorDataset,
)

from autoprune.core.errors import AutopruneError, unknown_name

Split = Literal["train", "val", "test"]
SPLITS: tuple[Split, ...] = ("train", "val", "test")


@dataclass(frozen=True)
class DataSplits:
    """A classification dataset cut into train, validation and test splits.

    Images are float32 ``(N, C, H, W)`` normalised per channel with the mean and standard
    deviation of the train split; labels are int64 ``(N,)`` in ``[0, num_classes)``.
    Search rewards use ``val`` (carved from the original training set); ``test`` is for
    final reporting only.

    Attributes:
        name: Dataset name as given to :func:`load_dataset`.
        x_train: Training images.
        y_train: Training labels.
        x_val: Validation images (held out from the original training set).
        y_val: Validation labels.
        x_test: Test images (the dataset's official test set).
        y_test: Test labels.
        num_classes: Number of classes.
        mean: Per-channel mean subtracted from every split (train statistics), or ``()``.
        std: Per-channel standard deviation divided out of every split, or ``()``.

    Example:
        >>> x, y = torch.zeros(4, 1, 2, 2), torch.tensor([0, 1, 0, 1])
        >>> splits = DataSplits("toy", x, y, x[:2], y[:2], x[:2], y[:2], num_classes=2)
        >>> splits.input_shape, splits.describe()["val"]
        ((1, 2, 2), 2)
        >>> next(iter(splits.loader("train", batch_size=3)))[0].shape
        torch.Size([3, 1, 2, 2])
    """

    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    num_classes: int
    mean: tuple[float, ...] = ()
    std: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.num_classes, int) or self.num_classes < 1:
            raise AutopruneError(
                f"dataset '{self.name}': num_classes must be a positive int, "
                f"got {self.num_classes!r}"
            )
        for split in SPLITS:
            self._check_split(split)

    def _check_split(self, split: Split) -> None:
        x, y = self.tensors(split)
        where = f"dataset '{self.name}', split '{split}'"
        if not isinstance(x, torch.Tensor) or x.dtype != torch.float32 or x.ndim != 4:
            raise AutopruneError(
                f"{where}: images must be a float32 tensor (N, C, H, W); "
                "convert with torch.as_tensor(x).float() and add the channel axis"
            )
        if not isinstance(y, torch.Tensor) or y.dtype != torch.int64 or y.ndim != 1:
            raise AutopruneError(
                f"{where}: labels must be an int64 tensor (N,); "
                "convert with torch.as_tensor(y).long()"
            )
        if len(x) != len(y) or len(x) == 0:
            raise AutopruneError(
                f"{where}: {len(x)} images and {len(y)} labels; both must be equal and non-zero"
            )
        if tuple(x.shape[1:]) != self.input_shape:
            raise AutopruneError(
                f"{where}: sample shape {tuple(x.shape[1:])} differs from the train "
                f"split's {self.input_shape}; give every split the same (C, H, W)"
            )
        low, high = int(y.min()), int(y.max())
        if low < 0 or high >= self.num_classes:
            raise AutopruneError(
                f"{where}: labels span {low}..{high} but num_classes is {self.num_classes}; "
                "use labels 0..num_classes-1"
            )

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """Shape of one sample, ``(C, H, W)``."""
        _, c, h, w = self.x_train.shape
        return (int(c), int(h), int(w))

    def tensors(self, split: Split) -> tuple[torch.Tensor, torch.Tensor]:
        """Images and labels of one split."""
        if split not in SPLITS:
            raise unknown_name("split", str(split), SPLITS)
        return getattr(self, f"x_{split}"), getattr(self, f"y_{split}")

    def loader(
        self,
        split: Split,
        batch_size: int,
        *,
        shuffle: bool = False,
        seed: int = 0,
        limit: int | None = None,
    ) -> DataLoader:
        """Batches of ``(images, labels)`` from one split.

        Batches are cut from the tensors in one indexing operation (no per-sample collation).

        Args:
            split: ``train``, ``val`` or ``test``.
            batch_size: Samples per batch (the last batch may be smaller).
            shuffle: Visit samples in a random order drawn from ``seed``; each new loader with
                the same seed repeats the same sequence of epochs.
            seed: Seed of the shuffling generator.
            limit: Use only the first ``limit`` samples of the split (all when None or larger).
        """
        x, y = self.tensors(split)
        if not isinstance(batch_size, int) or batch_size < 1:
            raise AutopruneError(f"batch_size must be a positive int, got {batch_size!r}")
        if limit is not None:
            if not isinstance(limit, int) or limit < 1:
                raise AutopruneError(f"limit must be a positive int or None, got {limit!r}")
            x, y = x[:limit], y[:limit]
        dataset = TensorDataset(x, y)
        if shuffle:
            generator = torch.Generator().manual_seed(seed)
            order: RandomSampler | SequentialSampler = RandomSampler(dataset, generator=generator)
        else:
            order = SequentialSampler(dataset)
        batches = BatchSampler(order, batch_size=batch_size, drop_last=False)
        # batch_size=None: each sampled item is already a list of indices, which
        # TensorDataset turns into whole batches by tensor indexing.
        return DataLoader(dataset, sampler=batches, batch_size=None)

    def describe(self) -> dict:
        """Plain-JSON summary for logging: sizes, classes, sample shape, normalisation."""
        return {
            "name": self.name,
            "num_classes": self.num_classes,
            "input_shape": list(self.input_shape),
            "train": len(self.y_train),
            "val": len(self.y_val),
            "test": len(self.y_test),
            "mean": list(self.mean),
            "std": list(self.std),
        }
