"""Loading trained weights into a model, with errors that name the first mismatch."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import nn

from autoprune.core.errors import AutopruneError
from autoprune.system.verified import DIGEST_KEY, verify

_FIX = "train it with `autoprune train` or pass weights made for this model"


def load_weights(model: nn.Module, path: str | Path) -> nn.Module:
    """Load a state dict saved with ``torch.save`` into ``model`` (in place) and return it.

    The file may hold the state dict itself or ``{"state_dict": state_dict, ...}``. It is
    read with ``weights_only=True``, so a whole pickled model is refused.

    Args:
        model: The network the weights were made for.
        path: File written by ``torch.save(model.state_dict(), path)``.

    Raises:
        AutopruneError: When the file is missing or unreadable, or when its state dict does
            not fit ``model``; the message names the first mismatching key.

    Example:
        >>> torch.save(trained.state_dict(), "lenet5.pt")  # doctest: +SKIP
        >>> model = load_weights(build_model("lenet5"), "lenet5.pt")  # doctest: +SKIP
    """
    path = Path(path)
    if not path.is_file():
        raise AutopruneError(f"weights file '{path}' does not exist; {_FIX}")
    _check_recorded_digest(path)
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises pickle, runtime and EOF errors alike
        raise AutopruneError(
            f"weights file '{path}' is not a readable state dict ({type(exc).__name__}); "
            f"save it with torch.save(model.state_dict(), path), or {_FIX}"
        ) from exc
    state = _extract_state_dict(loaded, path)
    problem = first_mismatch(model.state_dict(), state)
    if problem is not None:
        raise AutopruneError(f"weights file '{path}' does not fit the model: {problem}; {_FIX}")
    model.load_state_dict(state, strict=True)
    return model


def _check_recorded_digest(path: Path) -> None:
    """Refuse a file whose side-car (``NAME.json`` with a ``sha256``, as ``autoprune train``
    writes) records other bytes than the file holds."""
    side = path.with_suffix(".json")
    try:
        meta = json.loads(side.read_text()) if side.is_file() else None
    except (OSError, ValueError, UnicodeDecodeError):
        return  # not a side-car of ours
    if not isinstance(meta, dict) or DIGEST_KEY not in meta:
        return
    problem = verify(path, meta[DIGEST_KEY])
    if problem is not None:
        raise AutopruneError(
            f"weights file '{path}' is damaged: {problem} ({side.name} recorded it at save); "
            "restore it from a copy, or train it again (`autoprune train` with the same "
            "settings keeps the damaged file aside and retrains)"
        )


def _extract_state_dict(loaded: object, path: Path) -> Mapping[str, torch.Tensor]:
    if isinstance(loaded, Mapping) and isinstance(loaded.get("state_dict"), Mapping):
        loaded = loaded["state_dict"]
    if not isinstance(loaded, Mapping) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in loaded.items()
    ):
        raise AutopruneError(
            f"weights file '{path}' holds a {type(loaded).__name__}, not a state dict of "
            f"tensors; save it with torch.save(model.state_dict(), path), or {_FIX}"
        )
    return loaded


def first_mismatch(
    expected: Mapping[str, torch.Tensor], given: Mapping[str, torch.Tensor]
) -> str | None:
    """Describe the first key that differs between two state dicts, or return None.

    Keys are checked in the model's order (missing keys and shape differences), then the
    file's extra keys in the file's order.
    """
    for key, tensor in expected.items():
        if key not in given:
            return f"missing key '{key}'"
        if tuple(given[key].shape) != tuple(tensor.shape):
            return (
                f"key '{key}' has shape {tuple(given[key].shape)} in the file but "
                f"{tuple(tensor.shape)} in the model"
            )
    for key in given:
        if key not in expected:
            return f"unexpected key '{key}'"
    return None
