"""The ``.apz`` file size of a policy, predicted without compressing or writing anything.

``size`` in autoprune means the bytes of the ``.apz`` file ``autoprune apply`` writes: the
coded weights (codes, indices, codebooks, Huffman tables), every other state-dict tensor
raw, and the header. :class:`ApzSizeModel` predicts that number from the trained weights:

* which weights survive channel pruning: the compressor's own channel ranking
  (:mod:`autoprune.cost._apz_channels`);
* each layer's streams: magnitude sparsity, the quantizer's codes, layouts and Huffman
  coding as the writer does them (:mod:`autoprune.cost._apz_layer`); layers above
  :data:`SAMPLE_WEIGHTS` weights are predicted from evenly spaced whole rows;
* the other tensors exactly (their pruned shapes and dtypes), and the header by encoding the
  writer's own header with the predicted entries and the policy as metadata.

What it cannot see: the compressor's least-squares reconstruction and any fine-tuning
change the weights of some layers, hence their codes and masks, a little.

Layer results are memoised per (layer, pruned channels, sparsity, bits, quantizer), so a
search that varies one layer at a time pays for that layer only.

Example:
    >>> model = ApzSizeModel(net, specs, compressor.pruner)  # doctest: +SKIP
    >>> model.predict(policy.layers).total  # doctest: +SKIP
    27114
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from torch import nn

from autoprune.coding import (
    DEFAULT_INDEX_BITS,
    FALLBACK_INDEX_BITS,
    PREFIX_BYTES,
    build_header,
    encode_header,
)
from autoprune.compress.pruning import ChannelPruner
from autoprune.compress.sparsity import tensor_attr
from autoprune.core.policy import FLOAT_BITS, LayerPolicy, Policy
from autoprune.core.specs import LayerSpec
from autoprune.cost._apz_channels import ChannelSurvivors, GroupKey
from autoprune.cost._apz_kmeans import ValueBins
from autoprune.cost._apz_layer import LayerBytes, LayerSample, StreamBytes, predict_layer

SAMPLE_WEIGHTS = 65536
"""Weights of a layer beyond which its streams are predicted from a sample of whole rows."""
MEMO_ENTRIES = 50_000
"""Memoised layer results kept before the memo starts over."""
SAMPLE_ENTRIES = 128
"""Weight samples (and histograms) of pruned layer shapes kept before starting over."""
_CRC_STAND_IN = 2_863_311_530
"""A ten-digit stand-in for the body checksum the header records."""


@dataclass(frozen=True)
class ApzSizeReport:
    """Predicted bytes of an ``.apz`` file.

    Attributes:
        layers: Predicted streams of every coded layer, in file order.
        extra_bytes: The other tensors (biases, BatchNorm parameters and buffers), raw.
        header_bytes: Magic, version, lengths and the zlib-compressed JSON header.
    """

    layers: dict[str, LayerBytes]
    extra_bytes: int
    header_bytes: int

    @property
    def layer_bytes(self) -> int:
        """Bytes of all coded layers' streams."""
        return sum(layer.total for layer in self.layers.values())

    @property
    def total(self) -> int:
        """The predicted file size in bytes."""
        return self.layer_bytes + self.extra_bytes + self.header_bytes


class ApzSizeModel:
    """Predicts the size of the ``.apz`` file of any policy for one trained model.

    Args:
        model: The trained, unpruned model (its weights are copied; it is not changed).
        specs: Its compressible layers, in file order.
        pruner: The channel pruner the compressor uses.
        round_to: Rounding of kept channel counts (the compressor's option).
        record: Policy fields the shipped policy carries in the file's metadata besides its
            layers (e.g. ``{"meta": {...}, "metrics": {...}}``); they cost header bytes.
        sample_weights: Layers with more weights are predicted from a sample of whole rows.
    """

    def __init__(
        self,
        model: nn.Module,
        specs: Sequence[LayerSpec],
        pruner: ChannelPruner,
        *,
        round_to: int | None = None,
        record: Mapping[str, Any] | None = None,
        sample_weights: int = SAMPLE_WEIGHTS,
    ) -> None:
        self.names = tuple(spec.name for spec in specs)
        self.survivors = ChannelSurvivors(model, self.names, pruner, round_to)
        weights = {name: tensor_attr(model.get_submodule(name), "weight") for name in self.names}
        self._weights = {n: w.detach().cpu().float().numpy().copy() for n, w in weights.items()}
        self._policy = {**Policy.identity(list(specs)).to_dict(), **dict(record or {})}
        self._sample_weights = sample_weights
        self._samples: dict[tuple[str, GroupKey], LayerSample] = {}
        self._bins: dict[tuple[str, GroupKey], ValueBins] = {}
        self._memo: dict[tuple, LayerBytes] = {}
        self._extras: dict[tuple[int, ...], list[dict]] = {}

    def predict(self, layers: Mapping[str, LayerPolicy]) -> ApzSizeReport:
        """Predicted file bytes under per-layer settings (missing layers stay float)."""
        settings = {name: layers.get(name, LayerPolicy()) for name in self.names}
        kept = self.survivors.group_kept(settings)
        coded = {}
        for name, setting in settings.items():
            key = self.survivors.layer_key(name, kept)
            coded[name] = self._layer(name, key, setting)
        extras = self._extra_entries(tuple(kept))
        header = self._header(settings, coded, extras)
        return ApzSizeReport(coded, sum(e["length"] for e in extras), header)

    def _layer(self, name: str, key: GroupKey, setting: LayerPolicy) -> LayerBytes:
        memo_key = (name, key, setting.sparsity, setting.w_bits, setting.quantizer)
        if memo_key not in self._memo:
            sample = _cached(self._samples, (name, key), lambda: self._sample(name, key))
            kmeans = setting.quantizer == "kmeans" and setting.w_bits < FLOAT_BITS
            if kmeans and len(sample.rows) < sample.shape[0]:
                bins = _cached(self._bins, (name, key), lambda: self._value_bins(name, key))
                sample = replace(sample, bins=bins)
            _cached(self._memo, memo_key, lambda: predict_layer(sample, setting), MEMO_ENTRIES)
        return self._memo[memo_key]

    def _sample(self, name: str, key: GroupKey) -> LayerSample:
        """The layer's surviving weights (or evenly spaced whole rows of them)."""
        weight = self._weights[name]
        out_idx, in_idx = self.survivors.kept_indices(name, key)
        shape = (out_idx.size, in_idx.size, *weight.shape[2:])
        wanted = max(1, math.ceil(self._sample_weights / max(1, math.prod(shape[1:]))))
        if out_idx.size > wanted:
            picks = np.linspace(0, out_idx.size - 1, wanted).round().astype(np.int64)
            out_idx = out_idx[np.unique(picks)]
        rows = weight[out_idx]
        if in_idx.size < weight.shape[1]:
            rows = rows[:, in_idx]
        bits = DEFAULT_INDEX_BITS.get(weight.ndim, FALLBACK_INDEX_BITS)
        return LayerSample(rows.reshape(len(rows), -1), shape, bits)

    def _value_bins(self, name: str, key: GroupKey) -> ValueBins:
        """A histogram of all surviving weights of a layer (for k-means of a sampled layer)."""
        out_idx, in_idx = self.survivors.kept_indices(name, key)
        return ValueBins.of(self._weights[name][out_idx][:, in_idx])

    def _extra_entries(self, kept: tuple[int, ...]) -> list[dict]:
        """Header entries (offset left out) of the other tensors under ``kept``."""
        if kept not in self._extras:
            if len(self._extras) >= MEMO_ENTRIES:
                self._extras.clear()
            shapes = self.survivors.extra_shapes(kept)
            entries = []
            for name, (_, dtype) in self.survivors.extras.items():
                shape = [int(d) for d in shapes[name]]
                length = math.prod(shape) * dtype.itemsize
                entries.append({"name": name, "dtype": dtype.str, "shape": shape, "length": length})
            self._extras[kept] = entries
        return self._extras[kept]

    def _header(
        self,
        settings: Mapping[str, LayerPolicy],
        coded: Mapping[str, LayerBytes],
        extras: list[dict],
    ) -> int:
        """Bytes of the prefix and the compressed header the writer would produce."""
        offset = 0
        layer_entries = []
        for name, layer in coded.items():
            streams = {}
            for role, stream in layer.streams:
                streams[role] = {"coding": stream.coding, "offset": offset, **_stream(stream)}
                offset += stream.length
            layer_entries.append(_layer_entry(name, layer) | {"streams": streams})
        extra_entries = []
        for entry in extras:
            fields = {key: entry[key] for key in ("name", "dtype", "shape")}
            extra_entries.append(fields | {"offset": offset, "length": entry["length"]})
            offset += entry["length"]
        policy = dict(self._policy)
        policy["layers"] = {name: dict(vars(setting)) for name, setting in settings.items()}
        metadata = {"policy": _ordered(policy)}
        header = build_header(layer_entries, extra_entries, metadata, offset, _CRC_STAND_IN)
        return PREFIX_BYTES + len(encode_header(header))


def _cached(cache: dict, key: Any, make: Callable[[], Any], limit: int = SAMPLE_ENTRIES) -> Any:
    """``cache[key]``, made on a miss; a full cache starts over."""
    if key not in cache:
        if len(cache) >= limit:
            cache.clear()
        cache[key] = make()
    return cache[key]


def _stream(stream: StreamBytes) -> dict:
    return {
        "length": stream.length,
        "count": stream.count,
        "bits": stream.bits,
        "width": stream.width,
        "table": stream.table,
    }


def _layer_entry(name: str, layer: LayerBytes) -> dict:
    """A layer's header entry without its streams, keys in the writer's order."""
    return {
        "name": name,
        "shape": [int(d) for d in layer.shape],
        "scheme": layer.scheme,
        "bits": layer.bits,
        "layout": layer.layout,
        "index_bits": layer.index_bits,
        "alphabet": layer.alphabet,
        "kept": layer.kept,
        "entries": layer.entries,
        "fillers": layer.fillers,
    }


_POLICY_KEYS: tuple[str, ...] = ("schema_version", "fingerprint", "layer_names", "layers", "budget")
_POLICY_KEYS += ("metrics", "meta")


def _ordered(policy: Mapping[str, Any]) -> dict:
    """Policy fields in :meth:`Policy.to_dict` order."""
    return {key: policy[key] for key in _POLICY_KEYS if key in policy}
