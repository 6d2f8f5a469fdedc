"""Rebuild a compressed model from the ``.apz`` or ``model.pt`` that autoprune wrote.

Every policy a search scores records what its model was built from
(``meta["evaluation"]["source"]``: the model name, the input shape and the class count), and
the files carry that policy, so a zoo, ``file.py:fn`` or ``torchvision:NAME`` model is
rebuilt with no other argument. A model that was a Python object is rebuilt from the same
kind of object, passed as ``model=``. Older files without the record fall back to the
search's ``config.json`` beside them, then to the zoo model whose layers match.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import torch
from torch import nn

from autoprune.core.errors import AutopruneError
from autoprune.core.policy import Policy, architecture_fingerprint
from autoprune.core.specs import discover_layers
from autoprune.data import OBJECT_PREFIX, DataSplits, load_dataset
from autoprune.models import build_model, model_names
from autoprune.workflow.baseline import build_for

MAX_CONFIG_BYTES = 1 << 20
"""Largest ``config.json`` beside a file that is read back."""


def read_compressed(path: Path) -> tuple[Policy, dict[str, torch.Tensor]]:
    """The policy and the state dict of a ``.apz`` file or an exported ``.pt``."""
    from autoprune.coding import read_apz, state_dict_from_apz

    if not path.is_file():
        raise AutopruneError(f"{path} does not exist; pass a .apz file or an exported model.pt")
    if path.suffix == ".apz":
        metadata = read_apz(path)[2]
        if not isinstance(metadata.get("policy"), dict):
            raise AutopruneError(f"{path} records no policy; it was not written by autoprune")
        return Policy.from_dict(metadata["policy"]), state_dict_from_apz(path)
    policy_path = path.with_name("policy.json")
    if not policy_path.is_file():
        raise AutopruneError(
            f"no policy.json next to {path}; load the model.apz of the same export instead"
        )
    state = torch.load(path, map_location="cpu", weights_only=True)
    return Policy.load(policy_path), state


def recorded_source(policy: Policy) -> dict[str, Any]:
    """What the policy records of its model (empty for files older than the record)."""
    record = policy.meta.get("evaluation")
    source = record.get("source") if isinstance(record, dict) else None
    return source if isinstance(source, dict) else {}


def uncompressed_model(
    path: Path,
    policy: Policy,
    model: str | nn.Module | None,
    data: str | DataSplits | None,
    data_dir: str | Path | None,
) -> tuple[nn.Module, tuple[int, ...]]:
    """The original (unpruned) architecture of ``policy`` and its input shape."""
    source = recorded_source(policy)
    if isinstance(model, nn.Module):
        shape = _input_shape(source, data, data_dir, path)
        return copy.deepcopy(model).eval(), shape
    name = model or source.get("model")
    if isinstance(name, str) and name.startswith(OBJECT_PREFIX):
        raise AutopruneError(
            f"{path} was made from a Python object ({name[len(OBJECT_PREFIX) :]}); pass "
            "model= (an instance of the same class, weights need not be trained)"
        )
    if data is None and _rebuildable(source) and (model is None or model == source["model"]):
        return _from_source(source), tuple(source["input_shape"])
    splits = _data(path, policy, data, data_dir)
    saved = _saved_search_config(path)
    name = model or source.get("model") or saved.get("model") or _zoo_model_for(policy, splits)
    return build_for(str(name), splits).eval(), splits.input_shape


def _rebuildable(source: dict[str, Any]) -> bool:
    shape, classes = source.get("input_shape"), source.get("num_classes")
    return (
        isinstance(source.get("model"), str)
        and isinstance(shape, list)
        and len(shape) == 3
        and all(isinstance(d, int) for d in shape)
        and isinstance(classes, int)
    )


def _from_source(source: dict[str, Any]) -> nn.Module:
    """Build the recorded model name for the recorded input shape and classes."""
    channels, height, width = source["input_shape"]
    with torch.random.fork_rng():
        net = build_model(
            source["model"],
            in_channels=channels,
            num_classes=source["num_classes"],
            input_size=(height, width),
        )
    return net.eval()


def _input_shape(
    source: dict[str, Any], data: str | DataSplits | None, data_dir: str | Path | None, path: Path
) -> tuple[int, ...]:
    """The input shape of a model object: recorded, else from ``data``."""
    shape = source.get("input_shape")
    if isinstance(shape, list) and all(isinstance(d, int) for d in shape):
        return tuple(shape)
    if isinstance(data, DataSplits):
        return data.input_shape
    if isinstance(data, str):
        return _open(data, data_dir).input_shape
    raise AutopruneError(f"{path} does not record its input shape; pass data= as well")


def _data(
    path: Path, policy: Policy, data: str | DataSplits | None, data_dir: str | Path | None
) -> DataSplits:
    if isinstance(data, DataSplits):
        return data
    record = policy.meta.get("evaluation")
    recorded = record.get("dataset") if isinstance(record, dict) else None
    name = data or _saved_search_config(path).get("dataset") or recorded
    if not name or str(name).startswith(OBJECT_PREFIX):
        raise AutopruneError(f"{path} does not record a dataset by name; pass data=")
    return _open(str(name), data_dir)


def _open(name: str, data_dir: str | Path | None) -> DataSplits:
    return load_dataset(name, data_dir=Path(data_dir) if data_dir is not None else None)


def _saved_search_config(path: Path) -> dict[str, Any]:
    """The ``config.json`` of the search run folder holding ``path`` (empty if none)."""
    config = path.with_name("config.json")
    try:
        if not config.is_file() or config.stat().st_size > MAX_CONFIG_BYTES:
            return {}
        data = json.loads(config.read_text())
    except (OSError, ValueError, RecursionError):
        return {}
    return data if isinstance(data, dict) else {}


def _zoo_model_for(policy: Policy, data: DataSplits) -> str:
    """The zoo model whose layers, built for ``data``, match the policy's fingerprint."""
    for name in model_names():
        try:
            with torch.random.fork_rng():
                net = build_for(name, data)
        except (AutopruneError, ValueError, RuntimeError):
            continue  # too small an input for this architecture
        specs = discover_layers(net, data.input_shape)
        if architecture_fingerprint(specs) == policy.fingerprint:
            return name
    raise AutopruneError(
        f"no zoo model matches the policy's layers on {data.name}; pass model= (the name "
        "or file.py:fn it was searched on)"
    )
