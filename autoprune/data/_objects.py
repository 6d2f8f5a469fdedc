"""A user's data objects as :class:`DataSplits`: loaders, datasets or tensors per split.

Accepted for each split: a :class:`~torch.utils.data.DataLoader` (its dataset, collate
function and workers are used; autoprune chooses batch sizes and order), a
:class:`~torch.utils.data.Dataset` of ``(input, target)`` samples, or an ``(x, y)`` pair of
tensors or arrays (held in memory). The data is used as given: no normalisation, no
reshaping. Without a validation split, one is carved from the training split by seeded
indices; without a test split, the validation split stands in for it (said in
:meth:`DataSplits.describe`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sized
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, IterableDataset, Subset, TensorDataset

from autoprune.core.errors import AutopruneError
from autoprune.core.splits import SPLITS, DataSplits
from autoprune.data._prepare import random_hold_out

ACCEPTED = (
    "a DataLoader, a torch Dataset of (input, target) samples, an (x, y) pair of tensors, or "
    "a dict of those per split {'train': ..., 'val': ..., 'test': ...}"
)
"""The forms of ``data=`` (named in every error about it)."""
OBJECT_PREFIX = "object:"
"""Prefix of the name a run records for an object it cannot rebuild from a name."""


def is_data_object(data: object) -> bool:
    """Whether ``data`` is a data object (not a dataset name)."""
    return not isinstance(data, str)


def splits_from_objects(
    data: object,
    *,
    name: str = "data",
    num_classes: int | None = None,
    val_size: int | float = 0.1,
    seed: int = 0,
) -> DataSplits:
    """``data`` as :class:`DataSplits` (a ready ``DataSplits`` is returned as it is).

    Args:
        data: One split's object (the training data) or a mapping of them per split; see
            :data:`ACCEPTED`.
        name: The dataset's label in records (``object:NAME``).
        num_classes: Classes of a classification task; None infers it from integer labels
            held in memory or a dataset's ``classes``, else leaves the task unlabelled (a
            user ``evaluate`` then scores models).
        val_size: Validation samples carved from train when no ``val`` is given.
        seed: Seed of that carve-out.

    Raises:
        AutopruneError: For any other form, naming the accepted ones.

    Example:
        >>> x, y = torch.randn(50, 3), torch.arange(50) % 2
        >>> splits = splits_from_objects((x, y), name="toy")
        >>> splits.name, splits.describe()["val"], splits.num_classes
        ('object:toy', 5, 2)
    """
    if isinstance(data, DataSplits):
        return data
    given = dict(data) if isinstance(data, Mapping) else {"train": data}
    unknown = sorted(set(map(str, given)) - set(SPLITS))
    if unknown or "train" not in given:
        raise AutopruneError(
            f"data= has split(s) {unknown or list(given)}; give 'train' and optionally 'val' "
            "and 'test' (each " + ACCEPTED.split(", or a dict")[0] + ")"
        )
    parts = {split: _as_dataset(split, obj) for split, obj in given.items()}
    loader = next((obj for obj in given.values() if isinstance(obj, DataLoader)), None)
    if "val" not in parts:
        parts["train"], parts["val"] = _carve(parts["train"], val_size, seed)
    parts.setdefault("test", parts["val"])
    classes = num_classes if num_classes is not None else _infer_classes(parts["train"])
    return DataSplits(
        OBJECT_PREFIX + name,
        parts["train"],
        parts["val"],
        parts["test"],
        num_classes=classes,
        collate_fn=loader.collate_fn if loader is not None else None,
        num_workers=loader.num_workers if loader is not None else 0,
    )


def _as_dataset(split: str, obj: object) -> Dataset:
    """One split's object as a dataset."""
    if isinstance(obj, DataLoader):
        return obj.dataset
    if isinstance(obj, Dataset):
        return obj
    if isinstance(obj, (tuple, list)) and len(obj) == 2:
        x, y = (_as_tensor(split, "inputs", obj[0]), _as_tensor(split, "targets", obj[1]))
        if x.is_floating_point() and x.dtype != torch.float32:
            x = x.float()
        if not y.is_floating_point() and not y.is_complex() and y.dtype != torch.bool:
            y = y.long()  # class indices of any integer type
        if len(x) != len(y) or len(x) == 0:
            raise AutopruneError(
                f"data= split '{split}': {len(x)} inputs and {len(y)} targets; give one "
                "target per input (and at least one)"
            )
        return TensorDataset(x, y)
    raise AutopruneError(f"data= split '{split}' is a {type(obj).__name__}; give {ACCEPTED}")


def _as_tensor(split: str, what: str, value: object) -> torch.Tensor:
    if isinstance(value, torch.Tensor):
        return value.detach()
    if isinstance(value, np.ndarray) and value.dtype != object:
        return torch.from_numpy(np.ascontiguousarray(value))
    raise AutopruneError(
        f"data= split '{split}': {what} are a {type(value).__name__}; give a tensor or a "
        "numpy array"
    )


def _carve(train: Dataset, val_size: int | float, seed: int) -> tuple[Dataset, Dataset]:
    """Split a sized dataset into (train, val) by seeded random indices."""
    if isinstance(train, IterableDataset) or not isinstance(train, Sized):
        raise AutopruneError(
            "data= is a stream without a length, so no validation split can be carved from "
            "it; pass {'train': ..., 'val': ...}"
        )
    split = random_hold_out(len(train), val_size, seed)
    if split is None:
        raise AutopruneError(
            f"data= has {len(train)} training samples, too few to carve {val_size} for "
            "validation; pass a 'val' split"
        )
    kept, held = (torch.from_numpy(part) for part in split)
    if isinstance(train, TensorDataset):
        return (
            TensorDataset(*(t[kept] for t in train.tensors)),
            TensorDataset(*(t[held] for t in train.tensors)),
        )
    return Subset(train, kept.tolist()), Subset(train, held.tolist())


def _infer_classes(train: Dataset) -> int | None:
    """Classes of integer labels held in memory, or a dataset's ``classes`` list."""
    base: Any = train.dataset if isinstance(train, Subset) else train
    classes = getattr(base, "classes", None)
    if isinstance(classes, (list, tuple)) and classes:
        return len(classes)
    if isinstance(train, TensorDataset) and len(train.tensors) >= 2:
        labels = train.tensors[1]
        if labels.ndim == 1 and not labels.is_floating_point() and labels.dtype != torch.bool:
            if int(labels.min()) < 0:
                return None
            return int(labels.max()) + 1
    return None
