"""Content checks of a dataset, run once when it is loaded: data nothing can learn from is
refused with the problem and the fix, before any model trains on it.

* **non-finite pixels**: a NaN or infinite value turns every loss into NaN, so training
  "succeeds" at chance level;
* **labels**: every class ``0..K-1`` must have training images, and every test label must
  be one of them (a stray label 1000 among 0..9 would otherwise make 1,001 classes);
* **images per class**: at least :data:`MIN_PER_CLASS` training images of every class,
  so that the validation split and the calibration batches can see each of them.
"""

from __future__ import annotations

import numpy as np
import torch

from autoprune.core.errors import AutopruneError

MIN_PER_CLASS = 5
"""Fewest training images (before the validation split is carved) a class may have."""


def check_finite(name: str, split: str, x: np.ndarray | torch.Tensor) -> None:
    """Refuse images holding NaN or infinite values, naming how many and the first one."""
    flat = x.reshape(len(x), -1)
    if isinstance(flat, torch.Tensor):
        bad = (~torch.isfinite(flat)).any(dim=1).nonzero().flatten().tolist()
    elif np.issubdtype(flat.dtype, np.floating):
        bad = np.flatnonzero(~np.isfinite(flat).all(axis=1)).tolist()
    else:
        return  # integer images cannot hold NaN
    if bad:
        raise AutopruneError(
            f"dataset '{name}': {len(bad)} of {len(x)} images of x_{split} hold NaN or "
            f"infinite pixels (the first at index {bad[0]}); remove them or replace the "
            "values (e.g. np.nan_to_num(x)) before training on it"
        )


def _spans(values: list[int]) -> str:
    """``[3, 4, 5, 9]`` as ``3..5, 9`` (at most four spans shown)."""
    spans: list[list[int]] = []
    for value in values:
        if spans and value == spans[-1][1] + 1:
            spans[-1][1] = value
        else:
            spans.append([value, value])
    text = [str(a) if a == b else f"{a}..{b}" for a, b in spans[:4]]
    return ", ".join(text) + (", ..." if len(spans) > 4 else "")


def _missing(present: np.ndarray, classes: int) -> tuple[int, str]:
    """How many of the classes ``0..classes-1`` are not in ``present``, and the first spans
    of them as text, in time and memory bounded by ``len(present)`` (never by ``classes``:
    a stray label 10**12 must not make a set of 10**12 numbers)."""
    seen = np.unique(np.asarray(present, dtype=np.int64))
    seen = seen[(seen >= 0) & (seen < classes)]
    bounds = np.concatenate(([-1], seen, [classes]))
    gaps = [(int(a) + 1, int(b) - 1) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
    spans = [(a, b) for a, b in gaps if a <= b]
    text = [str(a) if a == b else f"{a}..{b}" for a, b in spans[:4]]
    return classes - len(seen), ", ".join(text) + (", ..." if len(spans) > 4 else "")


def check_labels(
    name: str, y_train: np.ndarray, y_test: np.ndarray, num_classes: int | None
) -> int:
    """Refuse classes without training images, or test labels outside the training classes.

    Args:
        name: The dataset's name, for messages.
        y_train: Training labels (non-negative integers).
        y_test: Test labels.
        num_classes: The dataset's class count, or None to count ``max train label + 1``.

    Returns:
        The number of classes.
    """
    present, counts = np.unique(np.asarray(y_train), return_counts=True)
    classes = int(present.max()) + 1 if num_classes is None else num_classes
    for split, labels in (("train", y_train), ("test", y_test)):
        over = sorted({int(v) for v in np.asarray(labels).tolist() if v >= classes})
        if over:
            raise AutopruneError(
                f"dataset '{name}': y_{split} holds label(s) {_spans(over)} but num_classes is "
                f"{classes} (the training classes); use labels 0..{classes - 1}"
            )
    missing, shown = _missing(present, classes)
    if missing:
        raise AutopruneError(
            f"dataset '{name}': the labels of y_train span 0..{classes - 1} but classes "
            f"{shown} ({missing} of {classes}) have no training image; fix the "
            "stray labels, or renumber the classes 0..K-1 with "
            "np.unique(y, return_inverse=True)"
        )
    unseen = sorted({int(v) for v in np.asarray(y_test).tolist()} - {int(c) for c in present})
    if unseen:
        raise AutopruneError(
            f"dataset '{name}': y_test holds label(s) {_spans(unseen)} that no training image "
            f"has; test labels must be training classes 0..{classes - 1}"
        )
    few = [(int(c), int(n)) for c, n in zip(present, counts, strict=True) if n < MIN_PER_CLASS]
    if few:
        shown = ", ".join(f"class {c}: {n}" for c, n in few[:5])
        raise AutopruneError(
            f"dataset '{name}': {len(few)} class(es) have fewer than {MIN_PER_CLASS} training "
            f"images ({shown}{', ...' if len(few) > 5 else ''}); give every class at least "
            f"{MIN_PER_CLASS} (a search scores policies on held-out images of every class)"
        )
    return classes


def check_splits_content(splits: object) -> None:
    """Non-finite images and training classes of a ready ``DataSplits`` (a user's own)."""
    from autoprune.core.splits import SPLITS, DataSplits

    assert isinstance(splits, DataSplits)
    for split in SPLITS:
        if splits.in_memory(split):  # a streamed split is checked batch by batch when read
            check_finite(splits.name, split, splits.tensors(split)[0])
    if splits.num_classes is None or not splits.in_memory("train"):
        return
    present = torch.unique(splits.y_train).numpy()
    missing, shown = _missing(present, splits.num_classes)
    if missing:
        raise AutopruneError(
            f"dataset '{splits.name}': classes {shown} of {splits.num_classes} have "
            "no training image; give every class training images or lower num_classes"
        )
