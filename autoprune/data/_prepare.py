"""Turn raw arrays into :class:`DataSplits`: checks, validation carve-out, normalisation."""

from __future__ import annotations

import numbers

import numpy as np
import torch

from autoprune.core.errors import AutopruneError
from autoprune.core.splits import DataSplits
from autoprune.data._checks import check_finite, check_labels


def as_images(x: object, what: str) -> np.ndarray:
    """Images as a float32 ``(N, C, H, W)`` array.

    Accepts ``(N, H, W)`` (a channel axis is added) or ``(N, C, H, W)``. Integer arrays are
    divided by 255 (uint8) or by their maximum (other integer types); floats are kept.

    Args:
        x: A NumPy array, a tensor or anything ``np.asarray`` accepts.
        what: Name used in error messages, e.g. ``"x_train of data.npz"``.
    """
    arr = x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
    if arr.ndim == 3:
        arr = arr[:, None]
    if arr.ndim != 4:
        raise AutopruneError(
            f"{what}: images have shape {arr.shape}; give (N, H, W) or (N, C, H, W)"
        )
    if arr.shape[-1] in (1, 3, 4) and arr.shape[1] == arr.shape[2] > 4:  # (N, S, S, C)
        raise AutopruneError(
            f"{what}: images have shape {arr.shape}, which looks channels-last; "
            "transpose to (N, C, H, W) with x.transpose(0, 3, 1, 2)"
        )
    if arr.dtype == np.bool_ or not (
        np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)
    ):
        raise AutopruneError(f"{what}: images have dtype {arr.dtype}; give integers or floats")
    out = arr.astype(np.float32)  # always a fresh copy: later steps work in place
    if arr.dtype == np.uint8:
        out /= np.float32(255.0)
    elif np.issubdtype(arr.dtype, np.integer):
        out /= np.float32(max(int(arr.max(initial=0)), 1))
    return out


def as_labels(y: object, what: str) -> np.ndarray:
    """Labels as an int64 ``(N,)`` array of non-negative class indices.

    Accepts ``(N,)`` or ``(N, 1)``, integer dtype or floats holding whole numbers.
    """
    arr = y.detach().cpu().numpy() if isinstance(y, torch.Tensor) else np.asarray(y)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 1:
        raise AutopruneError(f"{what}: labels have shape {arr.shape}; give one class index each")
    if np.issubdtype(arr.dtype, np.floating) and np.all(np.mod(arr, 1) == 0):
        arr = arr.astype(np.int64)
    if not np.issubdtype(arr.dtype, np.integer):
        raise AutopruneError(f"{what}: labels have dtype {arr.dtype}; give integer class indices")
    if arr.size and arr.min() < 0:
        raise AutopruneError(f"{what}: labels contain {arr.min()}; class indices start at 0")
    return arr.astype(np.int64)


def check_val_args(val_size: int | float, seed: int) -> None:
    """Validate ``val_size`` and ``seed`` before any data is read."""
    if isinstance(val_size, bool) or not isinstance(val_size, numbers.Real):
        raise AutopruneError(f"val_size must be a count or a fraction, got {val_size!r}")
    if isinstance(val_size, numbers.Integral):
        if val_size < 1:
            raise AutopruneError(f"val_size {val_size} must be at least 1 sample (or a fraction)")
    elif not 0.0 < float(val_size) < 1.0:
        raise AutopruneError(f"val_size {val_size} must be a fraction in (0, 1) or a count")
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or not 0 <= seed < 2**32:
        raise AutopruneError(f"seed must be an int in [0, 2**32), got {seed!r}")


def held_out_count(n: int, size: int | float) -> int:
    """Samples a ``val_size`` holds out of ``n``: a count as given, a fraction rounded up.

    Example:
        >>> held_out_count(1000, 0.1), held_out_count(1000, 37)
        (100, 37)
    """
    return int(size) if isinstance(size, numbers.Integral) else int(np.ceil(float(size) * n))


def random_hold_out(n: int, size: int | float, seed: int) -> tuple[np.ndarray, np.ndarray] | None:
    """Sorted ``(kept, held)`` indices of a seeded random hold-out of ``size`` out of ``n``
    (None when that leaves no sample on either side).

    Example:
        >>> kept, held = random_hold_out(10, 0.2, seed=0)
        >>> len(kept), len(held)
        (8, 2)
    """
    count = held_out_count(n, size)
    if not 1 <= count < n:
        return None
    order = np.random.default_rng(seed).permutation(n)
    return np.sort(order[count:]), np.sort(order[:count])


def carve(labels: np.ndarray, size: int | float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Split sample indices into ``(kept, held_out)``, stratified by class when possible.

    Args:
        labels: Class index of every sample.
        size: Held-out count, or fraction of the samples (rounded up).
        seed: Random seed; the same seed always gives the same split.

    Returns:
        Two index arrays, each in a seeded random order.
    """
    n = len(labels)
    count = held_out_count(n, size)
    if not 1 <= count < n:
        raise AutopruneError(
            f"val_size {size} leaves no training samples out of {n}; use a smaller val_size"
        )
    classes, counts = np.unique(labels, return_counts=True)
    stratify = counts.min() >= 2 and len(classes) <= min(count, n - count)
    from sklearn.model_selection import train_test_split  # slow import: only when splitting

    kept, held = train_test_split(
        np.arange(n),
        test_size=count,
        random_state=seed,
        stratify=labels if stratify else None,
    )
    return np.asarray(kept), np.asarray(held)


def _normalise(
    x_train: torch.Tensor, others: list[torch.Tensor]
) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Standardise every tensor in place with the train split's per-channel statistics."""
    var, mean = torch.var_mean(x_train, dim=(0, 2, 3), correction=0)
    std = var.sqrt()
    std = torch.where(std > 1e-8, std, torch.ones_like(std))
    shape = (1, -1, 1, 1)
    for x in [x_train, *others]:
        x.sub_(mean.view(shape)).div_(std.view(shape))
    return tuple(mean.tolist()), tuple(std.tolist())


def _checked_pair(name: str, split: str, x: object, y: object) -> tuple[np.ndarray, np.ndarray]:
    """Convert one split's images and labels and check they have the same length."""
    images = as_images(x, f"dataset '{name}': x_{split}")
    labels = as_labels(y, f"dataset '{name}': y_{split}")
    if len(images) != len(labels) or len(images) == 0:
        raise AutopruneError(
            f"dataset '{name}': x_{split} has {len(images)} samples but y_{split} has "
            f"{len(labels)}; give one label per image (and at least one image)"
        )
    return images, labels


def build_splits(
    name: str,
    x_train: object,
    y_train: object,
    x_test: object,
    y_test: object,
    *,
    val_size: int | float,
    seed: int,
    num_classes: int | None = None,
) -> DataSplits:
    """Carve a validation split from the training data and normalise all splits.

    Args:
        name: Dataset name stored in the result.
        x_train: Training images; see :func:`as_images` for accepted shapes and dtypes.
        y_train: Training labels.
        x_test: Test images.
        y_test: Test labels.
        val_size: Validation count, or fraction of the training samples.
        seed: Seed of the validation carve-out.
        num_classes: Number of classes; ``max train label + 1`` when None.

    Raises:
        AutopruneError: For malformed arrays, NaN or infinite pixels, classes without
            training images, test labels outside the training classes, or a class with
            fewer than ``MIN_PER_CLASS`` training images.
    """
    check_val_args(val_size, seed)
    x_tr, y_tr = _checked_pair(name, "train", x_train, y_train)
    x_te, y_te = _checked_pair(name, "test", x_test, y_test)
    if x_tr.shape[1:] != x_te.shape[1:]:
        raise AutopruneError(
            f"dataset '{name}': x_train samples are {x_tr.shape[1:]} but x_test samples "
            f"are {x_te.shape[1:]}; give both the same (C, H, W)"
        )
    check_finite(name, "train", x_tr)
    check_finite(name, "test", x_te)
    num_classes = check_labels(name, y_tr, y_te, num_classes)
    kept, held = carve(y_tr, val_size, seed)
    x_all, y_all = torch.from_numpy(x_tr), torch.from_numpy(y_tr)
    x_train_t, x_val_t, x_test_t = x_all[kept], x_all[held], torch.from_numpy(x_te)
    mean, std = _normalise(x_train_t, [x_val_t, x_test_t])
    return DataSplits.from_tensors(
        name=name,
        x_train=x_train_t,
        y_train=y_all[kept],
        x_val=x_val_t,
        y_val=y_all[held],
        x_test=x_test_t,
        y_test=torch.from_numpy(y_te),
        num_classes=num_classes,
        mean=mean,
        std=std,
    )
