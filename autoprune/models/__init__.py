"""The model zoo: built-in networks, user models by name, and weight loading.

Example:
    >>> model = build_model("lenet5", in_channels=1, num_classes=10, input_size=(28, 28))
    >>> "resnet20" in model_names()
    True
"""

from __future__ import annotations

from autoprune.models._registry import (
    build_model,
    default_dataset,
    default_num_classes,
    model_names,
)
from autoprune.models._weights import load_weights

__all__ = [
    "build_model",
    "default_dataset",
    "default_num_classes",
    "load_weights",
    "model_names",
]
