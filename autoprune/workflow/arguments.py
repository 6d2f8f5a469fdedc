"""The Python API's ``model=`` / ``data=`` / callback arguments, checked and resolved.

Each accepts a name (as on the command line) or an object; anything else is one line that
names the parameter and the accepted forms, never a dump of the value.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import torch
from torch import nn

from autoprune.core.errors import AutopruneError
from autoprune.core.modes import eval_mode
from autoprune.core.training import model_device
from autoprune.data import ACCEPTED, DataSplits, splits_from_objects
from autoprune.workflow.inputs import UserObjects

MODEL_FORMS = "an nn.Module, or a model name (zoo name, file.py:fn, module:fn, torchvision:NAME)"
DATA_FORMS = (
    f"a dataset name (digits, fashion-mnist, folder:PATH, npz:PATH, file.py:fn), or {ACCEPTED}"
)


def check_model_arg(model: object, parameter: str = "model") -> None:
    """Refuse a ``model=`` that is neither a name nor an ``nn.Module``."""
    if isinstance(model, nn.Module):
        return
    if not isinstance(model, str) or not model.strip():
        raise AutopruneError(f"{parameter}= is a {type(model).__name__}; pass {MODEL_FORMS}")


def check_callable(function: object, parameter: str, signature: str) -> None:
    """Refuse a callback that cannot be called."""
    if function is not None and not callable(function):
        raise AutopruneError(
            f"{parameter}= is a {type(function).__name__}; pass a function {signature}"
        )


def resolve_data(
    data: object, *, num_classes: int | None = None, seed: int = 0
) -> DataSplits | None:
    """Data objects as :class:`DataSplits`; None for a dataset name (loaded later)."""
    if isinstance(data, str):
        if not data.strip():
            raise AutopruneError(f"data= is an empty name; pass {DATA_FORMS}")
        return None
    if data is None:
        raise AutopruneError(f"data= is missing; pass {DATA_FORMS}")
    return splits_from_objects(data, num_classes=num_classes, seed=seed)


def user_objects(
    model: object,
    data: object,
    *,
    evaluate: Callable[[nn.Module], float] | None = None,
    finetune: Callable[[nn.Module, int], object] | None = None,
    num_classes: int | None = None,
    seed: int = 0,
) -> UserObjects | None:
    """The caller's objects (None when everything is named and no callback is given).

    A classifier's class count, when the data cannot tell it, is read from the width of the
    model's output on one sample.
    """
    check_model_arg(model)
    check_callable(evaluate, "evaluate", "evaluate(model) -> float (higher is better)")
    check_callable(finetune, "finetune", "finetune(model, epochs) that trains in place")
    splits = resolve_data(data, num_classes=num_classes, seed=seed)
    module = model if isinstance(model, nn.Module) else None
    if splits is not None and splits.num_classes is None and evaluate is None:
        splits = _with_model_classes(splits, module)
    if module is None and splits is None and evaluate is None and finetune is None:
        return None
    return UserObjects(model=module, data=splits, evaluate=evaluate, finetune=finetune)


def _with_model_classes(data: DataSplits, model: nn.Module | None) -> DataSplits:
    """``data`` labelled with the class count the model's output shows, or an error."""
    classes = output_width(model, data) if model is not None else None
    if classes is None:
        raise AutopruneError(
            "data= does not tell its number of classes and no evaluate= was given; pass "
            "num_classes= for a classifier, or evaluate=(model -> float) for another task"
        )
    return replace(data, num_classes=classes)


def output_width(model: nn.Module, data: DataSplits) -> int | None:
    """Width of the model's 2-D output on one training sample (None for another output)."""
    sample = data.head("train", 1)[0]
    with torch.no_grad(), eval_mode(model):
        out = model(sample.to(model_device(model)))
    return int(out.shape[1]) if isinstance(out, torch.Tensor) and out.ndim == 2 else None


def names_for(model: object, data: object, objects: UserObjects | None) -> dict[str, Any]:
    """The config's ``model`` / ``dataset`` entries: names as given, labels for objects."""
    out: dict[str, Any] = {}
    if isinstance(model, str):
        out["model"] = model
    elif objects is not None and objects.model_label is not None:
        out["model"] = objects.model_label
    if isinstance(data, str):
        out["dataset"] = data
    elif objects is not None and objects.data is not None:
        out["dataset"] = objects.data.name
    return out
