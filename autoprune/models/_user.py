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


TORCHVISION_CLASSES = 1000
"""Classes of a torchvision model built without a dataset (ImageNet's, as torchvision ships)."""
_AUX_HEADS = ("googlenet", "inception_v3")
"""Families with auxiliary training heads: built without them (they never run in eval mode)."""


def build_torchvision_model(
    model_name: str, in_channels: int, num_classes: int, input_size: tuple[int, int] = (224, 224)
) -> nn.Module:
    """Build ``torchvision.models.get_model(model_name)`` untrained, adapted to the data.

    Vision transformers are built for ``input_size`` (ViT's ``image_size``, MaxViT's
    ``input_size``); GoogLeNet and Inception-v3 without their auxiliary training heads.
    """
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
    kwargs = torchvision_kwargs(model_name, input_size)
    model = torchvision.models.get_model(
        model_name, weights=None, num_classes=num_classes, **kwargs
    )
    if in_channels != 3:
        replace_first_conv(model, in_channels)
    return model


def torchvision_kwargs(model_name: str, input_size: tuple[int, int]) -> dict[str, Any]:
    """Builder arguments that size a torchvision model for ``input_size`` (height, width).

    Example:
        >>> torchvision_kwargs("vit_b_16", (64, 64)), torchvision_kwargs("resnet18", (64, 64))
        ({'image_size': 64}, {})
    """
    height, width = input_size
    if model_name.startswith("vit_"):
        if height != width:
            raise AutopruneError(
                f"torchvision:{model_name} takes square images, got {height}x{width}; "
                "resize the inputs to a square such as 224x224"
            )
        return {"image_size": height}
    if model_name.startswith("maxvit_"):
        return {"input_size": (height, width)}
    if model_name in _AUX_HEADS:
        return {"aux_logits": False, "init_weights": True}
    return {}


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
