"""User datasets produced by a Python function named ``path/to/file.py:fn`` or ``pkg.mod:fn``."""

from __future__ import annotations

from collections.abc import Callable

from autoprune.core.errors import AutopruneError
from autoprune.core.splits import DataSplits
from autoprune.core.user_code import load_callable, user_errors
from autoprune.data._checks import check_splits_content
from autoprune.data._prepare import build_splits


def load_function(target: str) -> Callable[..., object]:
    """Resolve ``path/to/file.py:function`` or ``package.module:function`` to the function."""
    return load_callable(target, "dataset")


def read_user(target: str, *, val_size: int | float, seed: int) -> DataSplits:
    """Call a user's dataset function (with no arguments) and return its splits.

    The function returns either a ready :class:`DataSplits` (used as is: its own splits and
    normalisation are kept) or a tuple ``(x_train, y_train, x_test, y_test)`` of arrays or
    tensors, which is split and normalised like the built-in datasets.
    """
    function = load_function(target)
    with user_errors(f"dataset '{target}'"):
        result = function()
    if isinstance(result, DataSplits):
        check_splits_content(result)
        return result
    if isinstance(result, (tuple, list)) and len(result) == 4:
        x_train, y_train, x_test, y_test = result
        return build_splits(target, x_train, y_train, x_test, y_test, val_size=val_size, seed=seed)
    raise AutopruneError(
        f"dataset '{target}' returned {type(result).__name__}; return a DataSplits or a tuple "
        "(x_train, y_train, x_test, y_test)"
    )
