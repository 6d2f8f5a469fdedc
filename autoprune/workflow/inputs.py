"""Objects a Python caller passes instead of names: the model, the data, the metric.

The CLI names things (``vgg_small``, ``fashion-mnist``); a Python caller may hand over an
``nn.Module``, its data and its own ``evaluate`` / ``finetune``. Both meet in one
:class:`~autoprune.workflow.session.SearchSession`: below it nothing knows which door was
used. A run records what it can of the objects (:meth:`UserObjects.record`) so that runs
stay comparable, and a resume with objects is refused when they differ.
"""

from __future__ import annotations

import copy
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from autoprune.core.errors import AutopruneError
from autoprune.core.policy import architecture_fingerprint
from autoprune.core.specs import discover_layers
from autoprune.data import OBJECT_PREFIX, DataSplits
from autoprune.workflow.evaluation import FinetuneFn, MetricFn

INPUTS_FILE = "inputs.json"
"""What a run folder records of the objects it searched on."""
FINGERPRINT_SAMPLES = 64
"""Samples per split whose bytes fingerprint a data object."""
MAX_RECORD_BYTES = 1 << 20
"""Largest ``inputs.json`` read back."""


@dataclass(frozen=True)
class UserObjects:
    """A caller's objects; each None falls back to the config's name.

    Example:
        >>> UserObjects(model=nn.Linear(2, 2)).model_label
        'object:Linear'
    """

    model: nn.Module | None = None
    """The trained network to compress (left untouched: the search works on a copy)."""
    data: DataSplits | None = None
    """The data, already resolved from loaders, datasets or tensors."""
    evaluate: MetricFn | None = None
    """``evaluate(model) -> float``, higher is better; replaces top-1 accuracy."""
    finetune: FinetuneFn | None = None
    """``finetune(model, epochs)`` in place; replaces the built-in fine-tuning loop."""

    @property
    def model_label(self) -> str | None:
        """How a run names the model object (its class), or None without one."""
        return None if self.model is None else OBJECT_PREFIX + type(self.model).__name__

    def trained_model(self) -> nn.Module:
        """A copy of the model object in eval mode (the caller's object is never changed)."""
        if self.model is None:
            raise AutopruneError("no model object was given")
        return copy.deepcopy(self.model).eval()

    def record(self) -> dict[str, Any]:
        """What a run can record of the objects: class, architecture, weights, data."""
        out: dict[str, Any] = {}
        if self.model is not None:
            out["model_class"] = f"{type(self.model).__module__}.{type(self.model).__qualname__}"
            out["weights_sha256"] = weights_digest(self.model)
            if self.data is not None:
                specs = discover_layers(self.model, self.data.input_shape)
                out["architecture"] = architecture_fingerprint(specs)
        if self.data is not None:
            out["data"] = self.data.describe()
            out["data_sample_sha256"] = data_sample_digest(self.data)
        out["evaluate"] = _callable_name(self.evaluate)
        out["finetune"] = _callable_name(self.finetune)
        return out


def weights_digest(model: nn.Module) -> str:
    """SHA-256 of a model's state dict (names, shapes and bytes), device-neutral."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(str(tuple(tensor.shape)).encode())
        digest.update(
            tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes()
        )
    return digest.hexdigest()


def data_sample_digest(data: DataSplits, count: int = FINGERPRINT_SAMPLES) -> str:
    """SHA-256 of the first ``count`` samples of every split: cheap, and it tells other data
    of the same sizes apart."""
    digest = hashlib.sha256()
    for split in ("train", "val", "test"):
        x, y = data.head(split, count)
        digest.update(x.detach().cpu().contiguous().numpy().tobytes())
        digest.update(torch.as_tensor(y).detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def _callable_name(function: object) -> str | None:
    if function is None:
        return None
    return str(getattr(function, "__qualname__", type(function).__name__))


def check_same_objects(run_dir: Path, record: dict[str, Any]) -> None:
    """Refuse to resume the run in ``run_dir`` with objects other than those it searched.

    Raises:
        AutopruneError: When the run was not made from objects, or the class, the
            architecture, the weights or the data differ.
    """
    path = run_dir / INPUTS_FILE
    saved = _read_record(path)
    if saved is None:
        raise AutopruneError(
            f"run {run_dir.name} was searched on named models and data ({path.name} is "
            "missing); resume it without objects, with the names it used"
        )
    for key, what in (
        ("model_class", "model class"),
        ("architecture", "architecture"),
        ("weights_sha256", "weights"),
        ("data", "data"),
        ("data_sample_sha256", "data"),
    ):
        if saved.get(key) != record.get(key):
            raise AutopruneError(
                f"run {run_dir.name} was searched on other {what} than the objects given "
                "now; resume with the same model, weights and data, or start a new search"
            )


def _read_record(path: Path) -> dict[str, Any] | None:
    """The objects record of a run folder (None when absent); a damaged one is an error."""
    if not path.is_file():
        return None
    if path.stat().st_size > MAX_RECORD_BYTES:
        raise AutopruneError(f"{path} is larger than a record can be; it is not autoprune's")
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError, RecursionError):
        raise AutopruneError(f"{path} is damaged; start a new search") from None
    if not isinstance(data, dict):
        raise AutopruneError(f"{path} is damaged; start a new search")
    return data


def model_source(model: str, data: DataSplits) -> dict[str, Any]:
    """What rebuilds the architecture of ``model`` without its data: recorded in every
    policy's evaluation record, so the ``.apz`` / ``model.pt`` files stand alone.

    A ``file.py:fn`` is recorded with the file's absolute path; a Python object only by its
    class (it cannot be rebuilt from a file: ``load_compressed`` then asks for ``model=``).

    Example:
        >>> x, y = torch.zeros(8, 1, 4, 4), torch.arange(8) % 2
        >>> data = DataSplits.from_tensors("toy", x, y, x, y, x, y, 2)
        >>> model_source("demo", data)["input_shape"]
        [1, 4, 4]
    """
    name = model
    file, sep, function = model.rpartition(":")
    if sep and file.endswith(".py") and not model.startswith(OBJECT_PREFIX):
        name = f"{Path(file).resolve()}:{function}"
    return {
        "model": name,
        "input_shape": list(data.input_shape),
        "num_classes": data.num_classes,
        "dataset": data.name,
    }


def priced_shape(record: object, data_shape: tuple[int, ...]) -> tuple[int, ...]:
    """The input shape a policy's costs were priced at: the ``priced_at`` of its
    evaluation record (a search given ``input_shape``), else the data's."""
    source = record.get("source") if isinstance(record, dict) else None
    shape = source.get("priced_at") if isinstance(source, dict) else None
    if isinstance(shape, list) and len(shape) == 3 and all(isinstance(d, int) for d in shape):
        return tuple(shape)
    return tuple(data_shape)
