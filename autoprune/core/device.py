"""One device setting (``auto``, ``cpu``, ``cuda``, ``cuda:N``), resolved at the entry point.

The session carries the resolved :class:`torch.device`: models move there once, batches per
batch, and anything leaving for numpy or disk goes through ``.cpu()``. Asking for CUDA
where there is none is one line, before any work.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from autoprune.core.errors import AutopruneError

if TYPE_CHECKING:
    import torch

DEVICE_CHOICES = "auto | cpu | cuda | cuda:N"


def resolve_device(name: str | torch.device | None = "auto") -> torch.device:
    """The device ``name`` means here; ``auto`` is the first CUDA device when present.

    Raises:
        AutopruneError: For an unknown name, or CUDA asked for where there is none.

    Example:
        >>> resolve_device("cpu")
        device(type='cpu')
    """
    import torch  # here, not at import: the CLI's help must not load torch

    if isinstance(name, torch.device):
        name = str(name)
    text = (name or "auto").strip().lower()
    if text == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if text == "cpu":
        return torch.device("cpu")
    kind, _, index = text.partition(":")
    if kind != "cuda" or (index and not index.isdigit()):
        raise AutopruneError(f"device '{text[:40]}' is unknown; use {DEVICE_CHOICES}")
    if not torch.cuda.is_available():
        raise AutopruneError(
            f"device '{text}' asked for, but no CUDA device is available here "
            "(torch.cuda.is_available() is False); use --device cpu or --device auto"
        )
    count = torch.cuda.device_count()
    if index and int(index) >= count:
        raise AutopruneError(
            f"device '{text}' does not exist: this machine has {count} CUDA device(s), "
            f"cuda:0..cuda:{count - 1}"
        )
    return torch.device(text if index else "cuda:0")


def check_device_name(name: str) -> None:
    """Refuse a device name that no machine has (without asking for CUDA)."""
    text = name.strip().lower()
    kind, _, index = text.partition(":")
    if text not in ("auto", "cpu", "cuda") and not (kind == "cuda" and index.isdigit()):
        raise AutopruneError(f"device '{text[:40]}' is unknown; use {DEVICE_CHOICES}")
