"""Models named by the user: ``file.py:fn``, ``package.module:fn`` and ``torchvision:NAME``."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from torch import nn

from autoprune.core.errors import AutopruneError
from autoprune.core.user_code import load_callable, user_errors

_BUILD_KWARGS = ("in_channels", "num_classes", "input_size")


def build_user_model(
    name: str, in_channels: int, num_classes: int, input_size: tuple[int, int]
) -> nn.Module:
    """Build ``path/to/file.py:fn`` or ``package.module:fn``.

    ``fn`` receives whichever of ``in_channels``, ``num_classes`` and ``input_size`` its
    signature accepts (all of them when it takes ``**kwargs``) and must return an
    ``nn.Module``.
    """
    attr = name.rpartition(":")[2]
    fn = load_callable(name, "model")
    values = {"in_channels": in_channels, "num_classes": num_classes, "input_size": input_size}
    with user_errors(f"model '{name}'"):
        model = fn(**_accepted_kwargs(fn, values))
    if not isinstance(model, nn.Module):
        raise AutopruneError(
            f"model '{name}' returned {type(model).__name__}, not a torch.nn.Module; "
            f"make {attr}() return the network"
        )
    return model


def _accepted_kwargs(fn: Callable[..., Any], values: dict[str, Any]) -> dict[str, Any]:
    """The subset of ``values`` that ``fn`` accepts as keyword arguments."""
    try:
        parameters = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):  # builtins without a signature
        return {}
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
        return dict(values)
    keyword_kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    names = {p.name for p in parameters if p.kind in keyword_kinds}
    return {key: value for key, value in values.items() if key in names}


def build_torchvision_model(model_name: str, in_channels: int, num_classes: int) -> nn.Module:
    """Build ``torchvision.models.get_model(model_name)`` untrained, adapted to the data."""
    try:
        import torchvision
    except ImportError as exc:  # also catches a torchvision built for another torch
        raise AutopruneError(
            f"model 'torchvision:{model_name}' needs torchvision, which is not importable "
            f"({exc}); install the build matching your torch, e.g. `pip install torchvision "
            "--index-url https://download.pytorch.org/whl/cpu`, or use a zoo model"
        ) from exc
    available = torchvision.models.list_models()
    if model_name not in available:
        raise AutopruneError(
            f"unknown torchvision model '{model_name}'; choose one of: {', '.join(available)}"
        )
    model = torchvision.models.get_model(model_name, weights=None, num_classes=num_classes)
    if in_channels != 3:
        replace_first_conv(model, in_channels)
    return model


def replace_first_conv(model: nn.Module, in_channels: int) -> None:
    """Swap the first ``nn.Conv2d`` of ``model`` for a fresh one reading ``in_channels``."""
    for name, module in model.named_modules():
        if isinstance(module, nn.Conv2d):
            if module.groups != 1:
                raise AutopruneError(
                    f"the first conv '{name}' is grouped, so its input channels cannot be "
                    f"changed to {in_channels}; use 3-channel inputs or another model"
                )
            new = nn.Conv2d(
                in_channels,
                module.out_channels,
                module.kernel_size,  # type: ignore[arg-type]
                module.stride,  # type: ignore[arg-type]
                module.padding,  # type: ignore[arg-type]
                module.dilation,  # type: ignore[arg-type]
                bias=module.bias is not None,
                padding_mode=module.padding_mode,
            )
            parent_name, _, attr = name.rpartition(".")
            setattr(model.get_submodule(parent_name), attr, new)
            return
    raise AutopruneError("the model has no nn.Conv2d to adapt to the number of input channels")
