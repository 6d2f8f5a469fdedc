"""The zoo: model names and :func:`build_model`."""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from autoprune.core.errors import AutopruneError, unknown_name
from autoprune.models._common import check_build_args
from autoprune.models._demo import DemoCNN
from autoprune.models._lenet import LeNet5, LeNet300
from autoprune.models._mobilenet import MobileNetV2Small
from autoprune.models._resnet import ResNet20
from autoprune.models._user import (
    TORCHVISION_CLASSES,
    build_torchvision_model,
    build_user_model,
)
from autoprune.models._vgg import VGGSmall

_ZOO: dict[str, Callable[..., nn.Module]] = {
    "demo": DemoCNN,
    "lenet300": LeNet300,
    "lenet5": LeNet5,
    "vgg_small": VGGSmall,
    "resnet20": ResNet20,
    "mobilenetv2_small": MobileNetV2Small,
}
_DEFAULT_DATASETS = {name: "fashion-mnist" for name in _ZOO} | {"demo": "digits"}
"""The dataset each zoo model is designed for (its input size), as in DESIGN.md."""
_OTHER_FORMS = "or a user model as 'path/to/file.py:fn', 'package.module:fn' or 'torchvision:NAME'"


def model_names() -> list[str]:
    """Names of the built-in models, smallest first.

    Example:
        >>> model_names()[:3]
        ['demo', 'lenet300', 'lenet5']
    """
    return list(_ZOO)


def default_dataset(name: str) -> str | None:
    """The dataset a zoo model is designed for; None for user and torchvision models.

    Example:
        >>> default_dataset("vgg_small"), default_dataset("demo"), default_dataset("m.py:fn")
        ('fashion-mnist', 'digits', None)
    """
    return _DEFAULT_DATASETS.get(name)


def default_num_classes(name: str) -> int:
    """Classes of ``name`` built without a dataset: torchvision's 1000, else 10.

    Example:
        >>> default_num_classes("torchvision:resnet18"), default_num_classes("demo")
        (1000, 10)
    """
    return TORCHVISION_CLASSES if name.startswith("torchvision:") else 10


def build_model(
    name: str,
    *,
    in_channels: int = 1,
    num_classes: int = 10,
    input_size: tuple[int, int] = (28, 28),
) -> nn.Module:
    """Build an untrained model by name.

    Args:
        name: A zoo name (see :func:`model_names`), ``path/to/file.py:fn``,
            ``package.module:fn`` or ``torchvision:NAME``.
        in_channels: Channels of the input images.
        num_classes: Outputs of the classifier.
        input_size: Input ``(height, width)``; sizes the first fully-connected layer.

    Returns:
        A freshly initialised ``nn.Module`` in training mode.

    Raises:
        AutopruneError: On an unknown name, bad arguments or a user model that cannot be built.

    Example:
        >>> build_model("lenet5", in_channels=1, num_classes=10).fc2.out_features
        10
    """
    check_build_args(in_channels, num_classes, input_size)
    input_size = (int(input_size[0]), int(input_size[1]))
    if name in _ZOO:
        return _ZOO[name](in_channels=in_channels, num_classes=num_classes, input_size=input_size)
    if name.startswith("torchvision:"):
        return build_torchvision_model(name.partition(":")[2], in_channels, num_classes, input_size)
    if ":" in name:
        return build_user_model(name, in_channels, num_classes, input_size)
    if name.endswith(".py"):
        raise AutopruneError(
            f"model '{name}' names a file but no function; write it as '{name}:fn'"
        )
    raise AutopruneError(f"{unknown_name('model', name, model_names())}; {_OTHER_FORMS}")
