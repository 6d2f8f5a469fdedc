"""Bytes of one layer's streams in an ``.apz`` file, predicted from its float weights.

Follows :mod:`autoprune.coding._layer` step by step without building any stream:

* the mask keeps the ``n - round(sparsity * n)`` largest magnitudes (as
  :func:`autoprune.compress.sparsity.magnitude_mask`); no sparsity means no mask;
* weight codes as the quantizers make them: ``linear`` symmetric per output channel (zero
  code ``2**(bits-1) - 1``), ``kmeans`` Lloyd's algorithm from a linear initialisation on the
  kept weights (no 0.0 centroid, so fillers and stored zeros use the extra code), ``float``
  raw float32;
* the three layouts (``dense``, ``bitmap``, ``relative`` gaps with fillers) and for each
  stream the smaller of fixed-width and canonical Huffman (table + payload), exactly as
  :func:`~autoprune.coding.code_lengths` would build it; the smallest layout wins.

Given the exact weights of the layer the prediction is exact (up to float rounding inside
k-means). ``weights`` may also be a sample of whole rows of a large layer: counts are then
scaled to the full layer (see :class:`LayerSample`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from autoprune.coding import code_lengths
from autoprune.core.policy import FLOAT_BITS, LayerPolicy
from autoprune.cost._apz_kmeans import ValueBins, cluster_sizes, exact_sizes

FLOAT_BYTES = 4


@dataclass(frozen=True)
class LayerSample:
    """Float weights of a (pruned) layer, or of evenly spaced whole rows of it.

    Attributes:
        rows: 2-D float32 array, one row per output channel (in flat weight order).
        shape: Weight shape of the whole (pruned) layer.
        index_bits: Relative-index bits the writer uses for this layer.
        bins: A histogram of all the layer's weights, for k-means when ``rows`` is a
            sample (None: ``rows`` is the whole layer).
    """

    rows: np.ndarray
    shape: tuple[int, ...]
    index_bits: int
    bins: ValueBins | None = None

    def cut(self, sparsity: float) -> int:
        """Weights of the whole layer that magnitude pruning removes."""
        return round(sparsity * self.full_count) if sparsity > 0 else 0

    @property
    def full_count(self) -> int:
        """Weights of the whole layer."""
        return math.prod(self.shape)

    @property
    def scale(self) -> float:
        """Weights of the layer per weight of the sample."""
        return self.full_count / max(1, self.rows.size)


class StreamBytes(NamedTuple):
    """One predicted stream, with the fields the ``.apz`` header records for it."""

    coding: str
    length: int
    # Named like the .apz header key; as a NamedTuple field it shadows tuple.count.
    count: int  # type: ignore[assignment]
    bits: int
    width: int = 0
    table: int = 0


@dataclass(frozen=True)
class LayerBytes:
    """Predicted streams of one layer, by role in the writer's order, and its header fields."""

    shape: tuple[int, ...]
    scheme: str
    bits: int
    layout: str
    index_bits: int
    alphabet: int
    kept: int
    fillers: int
    streams: tuple[tuple[str, StreamBytes], ...]

    @property
    def total(self) -> int:
        """All bytes of the layer's streams."""
        return sum(stream.length for _, stream in self.streams)

    @property
    def entries(self) -> int:
        """Stored values (kept weights plus fillers or stored zeros)."""
        return dict(self.streams)["values"].count


@dataclass(frozen=True)
class _Codes:
    """Histogram of the kept weights' codes and what the writer derives from the codes."""

    hist: np.ndarray
    alphabet: int  # 0 for float weights (stored raw)
    zero: int  # the code fillers and stored zeros get
    codebook: int  # bytes


def _width(alphabet: int) -> int:
    return max(1, (int(alphabet) - 1).bit_length())


def symbol_stream(hist: np.ndarray, width: int) -> StreamBytes:
    """A stream of symbols with counts ``hist``: fixed ``width`` or Huffman when smaller."""
    count = int(hist.sum())
    fixed = StreamBytes("fixed", (count * width + 7) // 8, count, count * width, width=width)
    if count == 0:
        return fixed
    table = int(np.flatnonzero(hist)[-1]) + 1
    bits = int(np.dot(code_lengths(hist).astype(np.int64), hist))
    huffman = StreamBytes("huffman", table + (bits + 7) // 8, count, bits, table=table)
    return huffman if huffman.length < fixed.length else fixed


def _scaled(hist: np.ndarray, scale: float) -> np.ndarray:
    """Counts of a sample histogram scaled to the whole layer (present symbols stay >= 1)."""
    if scale == 1.0:
        return hist
    scaled = np.rint(hist * scale).astype(np.int64)
    return np.where(hist > 0, np.maximum(scaled, 1), 0)


def keep_mask(rows: np.ndarray, sparsity: float) -> np.ndarray | None:
    """True for the weights magnitude pruning keeps (None: no mask at all).

    The ``round(sparsity * n)`` smallest magnitudes go; among equal magnitudes the earlier
    positions go first, as in ``magnitude_mask``.
    """
    n = rows.size
    cut = round(sparsity * n)
    if sparsity <= 0.0 or cut == 0:
        return None
    magnitude = np.abs(rows).ravel()
    edge = np.partition(magnitude, cut - 1)[cut - 1]  # the largest pruned magnitude
    mask = magnitude > edge
    missing = n - cut - int(mask.sum())
    if missing > 0:  # ties with the edge: the later ones stay
        ties = np.flatnonzero(magnitude == edge)
        mask[ties[ties.size - missing :]] = True
    return mask.reshape(rows.shape)


def _linear_hist(rows: np.ndarray, mask: np.ndarray | None, bits: int) -> np.ndarray:
    """Code histogram of the kept weights under symmetric per-row linear quantization."""
    top = (1 << (bits - 1)) - 1
    scale = np.abs(rows).max(axis=1) / np.float32(top)
    scale = np.where(scale > 0, scale, np.float32(1.0)).astype(np.float32)
    level = np.clip(np.rint(rows / scale[:, None]), -top, top).astype(np.int64) + top
    flat = level.ravel() if mask is None else level.ravel()[mask.ravel()]
    return np.bincount(flat, minlength=1 << bits)


def _codes(sample: LayerSample, policy: LayerPolicy, mask: np.ndarray | None) -> _Codes:
    """Code histogram of the sample's kept weights, alphabet, zero code and codebook bytes."""
    flat = sample.rows.ravel()
    kept = flat if mask is None else flat[mask.ravel()]
    bits = policy.w_bits
    if bits >= FLOAT_BITS:
        return _Codes(np.array([kept.size], dtype=np.int64), 0, 0, 0)
    if policy.quantizer == "kmeans":
        if sample.bins is None:
            sizes = exact_sizes(kept, bits)
        else:
            sizes = cluster_sizes(*sample.bins.kept(sample.cut(policy.sparsity)), bits)
        counts = np.rint(sizes).astype(np.int64)
        return _Codes(counts, sizes.size, sizes.size, FLOAT_BYTES * sizes.size)
    codebook = FLOAT_BYTES * sample.shape[0]
    if bits == 1:  # binary codes 0/1; no code decodes to zero, so the extra code 2
        return _Codes(np.bincount((kept >= 0).astype(np.int64), minlength=2), 2, 2, codebook)
    return _Codes(_linear_hist(sample.rows, mask, bits), 1 << bits, (1 << (bits - 1)) - 1, codebook)


def relative_gaps(mask: np.ndarray, index_bits: int) -> tuple[np.ndarray, int]:
    """Histogram of stored ``gap - 1`` symbols (fillers included) and the filler count."""
    span = 1 << index_bits
    gaps = np.diff(np.flatnonzero(mask.ravel()), prepend=-1)
    fillers = (gaps - 1) // span
    hist = np.bincount(gaps - 1 - fillers * span, minlength=span)
    total = int(fillers.sum())
    hist[span - 1] += total
    return hist, total


def _values(codes: _Codes, hist: np.ndarray, extra: int) -> StreamBytes:
    """Value stream: ``hist`` of the kept weights' codes plus ``extra`` zero codes."""
    if codes.alphabet == 0:  # float: raw float32
        count = int(hist.sum()) + extra
        return StreamBytes("raw", FLOAT_BYTES * count, count, 32 * count)
    full = np.zeros(max(hist.size, codes.zero + 1), dtype=np.int64)
    full[: hist.size] = hist
    full[codes.zero] += extra
    used = np.flatnonzero(full)
    top = int(used[-1]) + 1 if used.size else 0
    return symbol_stream(full, _width(max(codes.alphabet, top)))


def _layer(
    sample: LayerSample,
    policy: LayerPolicy,
    codes: _Codes,
    layout: str,
    counts: tuple[int, int],
    streams: dict[str, StreamBytes],
) -> LayerBytes:
    """The layer's result; ``counts`` are (kept weights, fillers)."""
    if codes.alphabet:
        count = codes.codebook // FLOAT_BYTES
        streams["codebook"] = StreamBytes("raw", codes.codebook, count, 32 * count)
    float_weights = policy.w_bits >= FLOAT_BITS
    return LayerBytes(
        shape=sample.shape,
        scheme="float" if float_weights else policy.quantizer,
        bits=policy.w_bits,
        layout=layout,
        index_bits=sample.index_bits,
        alphabet=0 if float_weights else codes.alphabet,
        kept=counts[0],
        fillers=counts[1],
        streams=tuple(streams.items()),
    )


def predict_layer(sample: LayerSample, policy: LayerPolicy) -> LayerBytes:
    """Predicted streams of the layer under ``policy`` (its sparsity, bits, quantizer).

    Example:
        >>> rows = np.random.default_rng(0).normal(size=(8, 64)).astype(np.float32)
        >>> sample = LayerSample(rows, (8, 64), index_bits=5)
        >>> predict_layer(sample, LayerPolicy()).total  # float32, dense
        2048
    """
    n = sample.full_count
    kept = n - sample.cut(policy.sparsity)
    mask = keep_mask(sample.rows, policy.sparsity) if kept < n else None
    if kept < n and mask is None:  # a sample too small to lose a weight of its own
        mask = np.ones(sample.rows.shape, dtype=bool)
    codes = _codes(sample, policy, mask)
    hist = _scaled(codes.hist, kept / max(1, int(codes.hist.sum())))
    if mask is None:
        return _layer(
            sample, policy, codes, "dense", (kept, 0), {"values": _values(codes, hist, 0)}
        )
    gap_hist, fillers = relative_gaps(mask, sample.index_bits)
    fillers = round(fillers * sample.scale)
    index = symbol_stream(_scaled(gap_hist, sample.scale), sample.index_bits)
    bitmap = StreamBytes("bitmap", math.ceil(n / 8), n, n)
    options = [
        ("relative", fillers, {"index": index, "values": _values(codes, hist, fillers)}),
        ("bitmap", 0, {"index": bitmap, "values": _values(codes, hist, 0)}),
        ("dense", 0, {"values": _values(codes, hist, n - kept)}),
    ]
    size = [sum(stream.length for stream in streams.values()) for _, _, streams in options]
    layout, fillers, streams = options[size.index(min(size))]
    return _layer(sample, policy, codes, layout, (kept, fillers), streams)
