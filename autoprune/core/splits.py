"""The :class:`DataSplits` container: train / validation / test data, in memory or streamed.

A split is a :class:`torch.utils.data.Dataset`. Tensors held in memory are a
:class:`~torch.utils.data.TensorDataset` and are batched by slicing (fast); any other
map-style dataset (an image folder, a user's ``Dataset``) is read batch by batch through a
:class:`~torch.utils.data.DataLoader`, so nothing assumes the data fits in RAM. An
:class:`~torch.utils.data.IterableDataset` is read in its own order.

A batch is ``(inputs, targets)``: ``inputs`` a tensor the model takes, ``targets`` class
indices for classification (``num_classes`` set) or anything a user's metric understands.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sized
from dataclasses import dataclass, field
from typing import Any, Literal

import torch
from torch.utils.data import (
    BatchSampler,
    DataLoader,
    Dataset,
    IterableDataset,
    RandomSampler,
    SequentialSampler,
    Subset,
    TensorDataset,
)

from autoprune.core.errors import AutopruneError, unknown_name

Split = Literal["train", "val", "test"]
SPLITS: tuple[Split, ...] = ("train", "val", "test")
Batch = tuple[torch.Tensor, Any]
"""``(inputs, targets)`` of one batch."""


@dataclass(frozen=True, eq=False)
class DataSplits:
    """A dataset cut into train, validation and test splits.

    Search rewards use ``val`` (carved from the original training set); ``test`` is for
    final reporting only. Build in-memory splits with :meth:`from_tensors`; any
    ``Dataset`` per split (streamed batch by batch) with the constructor.

    Attributes:
        name: Dataset name (a built-in name, ``folder:PATH``, or a user's label).
        train: Training samples ``(input, target)``.
        val: Validation samples (held out from the original training set).
        test: Test samples (the dataset's official test set).
        num_classes: Number of classes; None for a task that is not classification
            (then a user ``evaluate`` scores models).
        mean: Per-channel mean subtracted from every split (train statistics), or ``()``.
        std: Per-channel standard deviation divided out of every split, or ``()``.
        collate_fn: How samples of a streamed split are stacked (None: torch's default).
        num_workers: Loader processes of a streamed split.

    Example:
        >>> x, y = torch.zeros(4, 1, 2, 2), torch.tensor([0, 1, 0, 1])
        >>> splits = DataSplits.from_tensors("toy", x, y, x[:2], y[:2], x[:2], y[:2], 2)
        >>> splits.input_shape, splits.describe()["val"]
        ((1, 2, 2), 2)
        >>> next(iter(splits.loader("train", batch_size=3)))[0].shape
        torch.Size([3, 1, 2, 2])
    """

    name: str
    train: Dataset
    val: Dataset
    test: Dataset
    num_classes: int | None = None
    mean: tuple[float, ...] = ()
    std: tuple[float, ...] = ()
    collate_fn: Callable[[list[Any]], Any] | None = None
    num_workers: int = 0
    input_shape: tuple[int, ...] = field(init=False)
    """Shape of one input without the batch axis, e.g. ``(C, H, W)``."""

    def __post_init__(self) -> None:
        if self.num_classes is not None and (
            isinstance(self.num_classes, bool)
            or not isinstance(self.num_classes, int)
            or self.num_classes < 1
        ):
            raise AutopruneError(
                f"dataset '{self.name}': num_classes must be a positive int or None, "
                f"got {type(self.num_classes).__name__}"
            )
        for split in SPLITS:
            if not isinstance(self.dataset(split), Dataset):
                raise AutopruneError(
                    f"dataset '{self.name}', split '{split}': expected a torch Dataset, got "
                    f"{type(self.dataset(split)).__name__}"
                )
        object.__setattr__(self, "input_shape", self._first_shape())
        for split in SPLITS:
            if self.in_memory(split):
                self._check_tensor_split(split)

    @classmethod
    def from_tensors(
        cls,
        name: str,
        x_train: torch.Tensor,
        y_train: torch.Tensor,
        x_val: torch.Tensor,
        y_val: torch.Tensor,
        x_test: torch.Tensor,
        y_test: torch.Tensor,
        num_classes: int | None = None,
        mean: tuple[float, ...] = (),
        std: tuple[float, ...] = (),
    ) -> DataSplits:
        """Splits held in memory as ``(inputs, targets)`` tensors (batched by slicing)."""
        for split, x, y in (("train", x_train, y_train), ("val", x_val, y_val)):
            _check_pair(name, split, x, y)
        _check_pair(name, "test", x_test, y_test)
        return cls(
            name,
            TensorDataset(x_train, y_train),
            TensorDataset(x_val, y_val),
            TensorDataset(x_test, y_test),
            num_classes=num_classes,
            mean=tuple(mean),
            std=tuple(std),
        )

    def _first_shape(self) -> tuple[int, ...]:
        """The input shape of the first training sample."""
        try:
            first = next(iter(self.loader("train", batch_size=1)))
        except StopIteration:
            raise AutopruneError(
                f"dataset '{self.name}': the train split is empty; give it samples"
            ) from None
        inputs = first[0] if isinstance(first, (tuple, list)) else first
        if not isinstance(inputs, torch.Tensor):
            raise AutopruneError(
                f"dataset '{self.name}': a sample's input is a {type(inputs).__name__}; give "
                "samples (input_tensor, target)"
            )
        return tuple(int(d) for d in inputs.shape[1:])

    def _check_tensor_split(self, split: Split) -> None:
        x, y = self.tensors(split)
        where = f"dataset '{self.name}', split '{split}'"
        if x.dtype != torch.float32:
            raise AutopruneError(
                f"{where}: inputs must be float32, got {x.dtype}; convert with "
                "torch.as_tensor(x).float()"
            )
        if tuple(x.shape[1:]) != self.input_shape:
            raise AutopruneError(
                f"{where}: sample shape {tuple(x.shape[1:])} differs from the train "
                f"split's {self.input_shape}; give every split the same shape"
            )
        if self.num_classes is None:
            return
        if y.dtype != torch.int64 or y.ndim != 1:
            raise AutopruneError(
                f"{where}: labels must be an int64 tensor (N,); "
                "convert with torch.as_tensor(y).long()"
            )
        low, high = int(y.min()), int(y.max())
        if low < 0 or high >= self.num_classes:
            raise AutopruneError(
                f"{where}: labels span {low}..{high} but num_classes is {self.num_classes}; "
                "use labels 0..num_classes-1"
            )

    def dataset(self, split: Split) -> Dataset:
        """The dataset of one split."""
        if split not in SPLITS:
            raise unknown_name("split", str(split), SPLITS)
        return getattr(self, split)

    def in_memory(self, split: Split) -> bool:
        """Whether ``split`` is held as tensors (then :meth:`tensors` works)."""
        return isinstance(self.dataset(split), TensorDataset)

    def size(self, split: Split) -> int | None:
        """Samples in ``split`` (None for a stream of unknown length)."""
        data = self.dataset(split)
        return len(data) if isinstance(data, Sized) else None

    def tensors(self, split: Split) -> tuple[torch.Tensor, torch.Tensor]:
        """Inputs and targets of an in-memory split.

        Raises:
            AutopruneError: For a streamed split (read it with :meth:`loader`).
        """
        data = self.dataset(split)
        if not isinstance(data, TensorDataset):
            raise AutopruneError(
                f"dataset '{self.name}', split '{split}' is streamed, not held in memory; "
                "read it batch by batch with loader()"
            )
        x, y = data.tensors[0], data.tensors[1]
        return x, y

    def head(self, split: Split, count: int | None = None) -> tuple[torch.Tensor, Any]:
        """The first ``count`` samples of ``split`` as tensors (all of it when None).

        Reads only those samples of a streamed split; a bounded ``count`` keeps memory
        bounded.
        """
        if self.in_memory(split):
            x, y = self.tensors(split)
            return (x, y) if count is None else (x[:count], y[:count])
        inputs, targets = [], []
        for xb, yb in self.loader(split, 256, limit=count):
            inputs.append(xb)
            targets.append(torch.as_tensor(yb))
        if not inputs:
            raise AutopruneError(f"dataset '{self.name}', split '{split}' is empty")
        return torch.cat(inputs), torch.cat(targets)

    x_train = property(lambda self: self.tensors("train")[0], doc="Training inputs.")
    y_train = property(lambda self: self.tensors("train")[1], doc="Training targets.")
    x_val = property(lambda self: self.tensors("val")[0], doc="Validation inputs.")
    y_val = property(lambda self: self.tensors("val")[1], doc="Validation targets.")
    x_test = property(lambda self: self.tensors("test")[0], doc="Test inputs.")
    y_test = property(lambda self: self.tensors("test")[1], doc="Test targets.")

    def loader(
        self,
        split: Split,
        batch_size: int,
        *,
        shuffle: bool = False,
        seed: int = 0,
        limit: int | None = None,
    ) -> Iterable[Batch]:
        """Batches of ``(inputs, targets)`` from one split.

        In-memory splits are cut in one indexing operation per batch; streamed ones go
        through a :class:`DataLoader` with this dataset's ``collate_fn`` and workers.

        Args:
            split: ``train``, ``val`` or ``test``.
            batch_size: Samples per batch (the last batch may be smaller).
            shuffle: Visit samples in a random order drawn from ``seed``; each new loader with
                the same seed repeats the same sequence of epochs (a stream keeps its order).
            seed: Seed of the shuffling generator.
            limit: Use only the first ``limit`` samples of the split (all when None or larger).
        """
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise AutopruneError(f"batch_size must be a positive int, got {batch_size!r}")
        bad_limit = isinstance(limit, bool) or not isinstance(limit, int) or limit < 1
        if limit is not None and bad_limit:
            raise AutopruneError(f"limit must be a positive int or None, got {limit!r}")
        data = self.dataset(split)
        if isinstance(data, IterableDataset):
            return _LimitedStream(self._stream_loader(data, batch_size), limit)
        if limit is not None and isinstance(data, Sized) and limit < len(data):
            data = _first(data, limit)
        if not isinstance(data, Sized):
            raise AutopruneError(
                f"dataset '{self.name}', split '{split}': a map-style Dataset needs __len__"
            )
        if shuffle:
            generator = torch.Generator().manual_seed(seed)
            order: RandomSampler | SequentialSampler = RandomSampler(data, generator=generator)
        else:
            order = SequentialSampler(data)
        if isinstance(data, TensorDataset):
            batches = BatchSampler(order, batch_size=batch_size, drop_last=False)
            # batch_size=None: each sampled item is already a list of indices, which
            # TensorDataset turns into whole batches by tensor indexing.
            return DataLoader(data, sampler=batches, batch_size=None)
        return DataLoader(
            data,
            batch_size=batch_size,
            sampler=order,
            collate_fn=self.collate_fn,
            num_workers=self.num_workers,
        )

    def _stream_loader(self, data: IterableDataset, batch_size: int) -> DataLoader:
        return DataLoader(
            data, batch_size=batch_size, collate_fn=self.collate_fn, num_workers=self.num_workers
        )

    def describe(self) -> dict:
        """Plain-JSON summary for logging: sizes, classes, sample shape, normalisation."""
        return {
            "name": self.name,
            "num_classes": self.num_classes,
            "input_shape": list(self.input_shape),
            "train": self.size("train"),
            "val": self.size("val"),
            "test": self.size("test"),
            "mean": list(self.mean),
            "std": list(self.std),
            "streamed": not all(self.in_memory(s) for s in SPLITS),
        }


def _first(data: Dataset, count: int) -> Dataset:
    """The first ``count`` samples of a map-style dataset (a slice when in memory)."""
    if isinstance(data, TensorDataset):
        return TensorDataset(*(t[:count] for t in data.tensors))
    return Subset(data, range(count))


class _LimitedStream:
    """At most ``limit`` samples of a stream, cutting the last batch."""

    def __init__(self, loader: DataLoader, limit: int | None) -> None:
        self.loader, self.limit = loader, limit

    def __iter__(self) -> Iterator[Batch]:
        if self.limit is None:
            yield from self.loader
            return
        left = self.limit
        for batch in self.loader:
            inputs, targets = batch[0], batch[1]
            if len(inputs) > left:
                inputs, targets = inputs[:left], targets[:left]
            left -= len(inputs)
            yield inputs, targets
            if left <= 0:
                return


def _check_pair(name: str, split: str, x: object, y: object) -> None:
    """Tensors of one in-memory split: tensors, equal non-zero lengths."""
    where = f"dataset '{name}', split '{split}'"
    if not isinstance(x, torch.Tensor) or x.ndim < 2:
        raise AutopruneError(
            f"{where}: inputs must be a tensor (N, ...) with a batch axis; convert with "
            "torch.as_tensor(x).float()"
        )
    if not isinstance(y, torch.Tensor) or y.ndim < 1:
        raise AutopruneError(
            f"{where}: targets must be a tensor (N, ...); convert with torch.as_tensor(y)"
        )
    if len(x) != len(y) or len(x) == 0:
        raise AutopruneError(
            f"{where}: {len(x)} inputs and {len(y)} targets; both must be equal and non-zero"
        )
