"""Shared checks for the zoo constructors."""

from __future__ import annotations

from autoprune.core.errors import AutopruneError


def check_build_args(in_channels: int, num_classes: int, input_size: tuple[int, int]) -> None:
    """Raise :class:`AutopruneError` unless the constructor arguments are usable."""
    if isinstance(in_channels, bool) or not isinstance(in_channels, int) or in_channels < 1:
        raise AutopruneError(
            f"in_channels={in_channels!r} is invalid; use a positive integer such as 1 or 3"
        )
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise AutopruneError(
            f"num_classes={num_classes!r} is invalid; use a positive integer such as 10"
        )
    ok = (
        isinstance(input_size, (tuple, list))
        and len(input_size) == 2
        and all(isinstance(s, int) and not isinstance(s, bool) and s >= 1 for s in input_size)
    )
    if not ok:
        raise AutopruneError(
            f"input_size={input_size!r} is invalid; use two positive integers (height, width) "
            "such as (28, 28)"
        )


def require_min_size(model: str, input_size: tuple[int, int], minimum: int) -> None:
    """Raise :class:`AutopruneError` when either side of ``input_size`` is below ``minimum``."""
    if min(input_size) < minimum:
        raise AutopruneError(
            f"model '{model}' needs input_size of at least ({minimum}, {minimum}), got "
            f"{tuple(input_size)}; resize the inputs or choose another model"
        )
